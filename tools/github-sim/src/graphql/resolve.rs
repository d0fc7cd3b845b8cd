//! Field resolvers over the fixture world, with GitHub's visibility rules.

use base64::Engine;
use graphql_parser::query::Field;
use serde_json::Value as Json;

use super::exec::{Args, Exec, Out};
use super::paging::Page;
use crate::fixtures::{AccountKind, FixtureSponsorship, FixtureUser, Privacy};

/// The world as one request sees it.
pub(crate) struct World<'w> {
    pub accounts: &'w [FixtureUser],
    /// Index of the viewer (the token's user) in `accounts`.
    pub viewer: usize,
    pub base: &'w str,
}

impl World<'_> {
    pub fn index(&self, login: &str) -> Option<usize> {
        self.accounts
            .iter()
            .position(|a| a.login.eq_ignore_ascii_case(login))
    }

    /// The viewer is `account` itself or one of its admins.
    pub(super) fn viewer_manages(&self, account: usize) -> bool {
        let viewer = &self.accounts[self.viewer].login;
        account == self.viewer
            || self.accounts[account]
                .admins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(viewer))
    }

    /// `sponsor`'s sponsorship of `sponsorable`, if any.
    pub(super) fn sponsorship(&self, sponsor: usize, sponsorable: usize) -> Option<Sp> {
        let target = &self.accounts[sponsorable].login;
        self.accounts[sponsor]
            .sponsoring
            .iter()
            .find(|(login, _)| login.eq_ignore_ascii_case(target))
            .map(|(_, s)| Sp {
                sponsor,
                sponsorable,
                s: s.clone(),
            })
    }
}

/// One sponsorship with both ends resolved.
#[derive(Clone, Debug)]
pub(crate) struct Sp {
    pub sponsor: usize,
    pub sponsorable: usize,
    pub s: FixtureSponsorship,
}

/// A resolved GraphQL object.
#[derive(Clone, Debug)]
pub(crate) enum Obj {
    Query,
    Account(usize),
    Connection(Box<Page>),
    Edge(String, Box<Sp>),
    PageInfo(Box<Page>),
    Sponsorship(Box<Sp>),
    Tier(Box<Sp>),
}

/// What a field resolved to.
pub(crate) enum Resolved {
    Null,
    Leaf(Out),
    Obj(Obj),
    List(Vec<Obj>),
}

pub(super) fn s(v: &str) -> Resolved {
    Resolved::Leaf(Out::Str(v.to_string()))
}
pub(super) fn b(v: bool) -> Resolved {
    Resolved::Leaf(Out::Bool(v))
}
pub(super) fn i(v: impl Into<i64>) -> Resolved {
    Resolved::Leaf(Out::Int(v.into()))
}
pub(super) fn opt(v: Option<&str>) -> Resolved {
    v.map(s).unwrap_or(Resolved::Null)
}
fn opaque_id(prefix: &str, raw: String) -> Resolved {
    s(&format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    ))
}

impl Obj {
    /// The concrete GraphQL type name (`__typename`).
    pub fn type_name(&self, world: &World<'_>) -> &'static str {
        match self {
            Obj::Query => "Query",
            Obj::Account(a) => world.accounts[*a].kind.as_str(),
            Obj::Connection(_) => "SponsorshipConnection",
            Obj::Edge(..) => "SponsorshipEdge",
            Obj::PageInfo(_) => "PageInfo",
            Obj::Sponsorship(_) => "Sponsorship",
            Obj::Tier(_) => "SponsorsTier",
        }
    }

    pub fn resolve<'a>(
        &self,
        ex: &mut Exec<'a>,
        field: &Field<'a, &'a str>,
        args: &Args,
        path: &[Json],
    ) -> Resolved {
        match self {
            Obj::Query => super::owner::query(ex, field, args, path),
            Obj::Account(a) => super::owner::account(ex, *a, field, args, path),
            Obj::Connection(page) => match field.name {
                "totalCount" => i(page.total as i64),
                "totalRecurringMonthlyPriceInCents" => i(page.recurring_cents as i64),
                "totalRecurringMonthlyPriceInDollars" => i((page.recurring_cents / 100) as i64),
                "pageInfo" => Resolved::Obj(Obj::PageInfo(page.clone())),
                "nodes" => Resolved::List(
                    page.items
                        .iter()
                        .map(|(_, sp)| Obj::Sponsorship(Box::new(sp.clone())))
                        .collect(),
                ),
                "edges" => Resolved::List(
                    page.items
                        .iter()
                        .map(|(cursor, sp)| Obj::Edge(cursor.clone(), Box::new(sp.clone())))
                        .collect(),
                ),
                _ => Resolved::Null,
            },
            Obj::Edge(cursor, sp) => match field.name {
                "cursor" => s(cursor),
                "node" => Resolved::Obj(Obj::Sponsorship(sp.clone())),
                _ => Resolved::Null,
            },
            Obj::PageInfo(page) => match field.name {
                "hasNextPage" => b(page.has_next),
                "hasPreviousPage" => b(page.has_previous),
                "startCursor" => opt(page.items.first().map(|(c, _)| c.as_str())),
                "endCursor" => opt(page.items.last().map(|(c, _)| c.as_str())),
                _ => Resolved::Null,
            },
            Obj::Sponsorship(sp) => sponsorship(&ex.world, sp, field.name),
            Obj::Tier(sp) => {
                let t = &sp.s;
                match field.name {
                    "id" => {
                        let id = ex.world.accounts[sp.sponsorable].id;
                        let raw = format!("{id}:{}:{}", t.monthly_price_in_cents, t.is_one_time);
                        opaque_id("ST", raw)
                    }
                    "name" => s(&t.tier_name),
                    "description" => s(""),
                    "monthlyPriceInCents" => i(t.monthly_price_in_cents),
                    "monthlyPriceInDollars" => i(t.monthly_price_in_cents / 100),
                    "isOneTime" => b(t.is_one_time),
                    "isCustomAmount" => b(t.is_custom_amount),
                    _ => Resolved::Null,
                }
            }
        }
    }
}

fn sponsorship(w: &World<'_>, sp: &Sp, name: &str) -> Resolved {
    let t = &sp.s;
    let user_or_null = |a: usize| match w.accounts[a].kind {
        AccountKind::User => Resolved::Obj(Obj::Account(a)),
        AccountKind::Organization => Resolved::Null,
    };
    match name {
        "id" => {
            let raw = format!(
                "{}:{}",
                w.accounts[sp.sponsor].id, w.accounts[sp.sponsorable].id
            );
            opaque_id("SP", raw)
        }
        "isActive" => b(t.is_active),
        "isOneTimePayment" => b(t.is_one_time),
        "createdAt" => s(&t.created_at),
        "tierSelectedAt" => s(&t.tier_selected_at),
        "privacyLevel" => s(match t.privacy {
            Privacy::Public => "PUBLIC",
            Privacy::Private => "PRIVATE",
        }),
        "paymentSource" => s("GITHUB"),
        "isSponsorOptedIntoEmail" => {
            if w.viewer_manages(sp.sponsorable) {
                b(true)
            } else {
                Resolved::Null
            }
        }
        "tier" => Resolved::Obj(Obj::Tier(Box::new(sp.clone()))),
        "sponsorEntity" => Resolved::Obj(Obj::Account(sp.sponsor)),
        "sponsorable" => Resolved::Obj(Obj::Account(sp.sponsorable)),
        "sponsor" => user_or_null(sp.sponsor),
        "maintainer" => user_or_null(sp.sponsorable),
        _ => Resolved::Null,
    }
}
