//! Field resolvers over the fixture world, with GitHub's visibility rules.

use base64::Engine;
use graphql_parser::query::Field;
use serde_json::{json, Value as Json};

use super::exec::{locations, Args, Exec, Out};
use super::paging::{paginate, Page};
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
    fn viewer_manages(&self, account: usize) -> bool {
        let viewer = &self.accounts[self.viewer].login;
        account == self.viewer
            || self.accounts[account]
                .admins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(viewer))
    }

    /// `sponsor`'s sponsorship of `sponsorable`, if any.
    fn sponsorship(&self, sponsor: usize, sponsorable: usize) -> Option<Sp> {
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

fn s(v: &str) -> Resolved {
    Resolved::Leaf(Out::Str(v.to_string()))
}
fn b(v: bool) -> Resolved {
    Resolved::Leaf(Out::Bool(v))
}
fn i(v: impl Into<i64>) -> Resolved {
    Resolved::Leaf(Out::Int(v.into()))
}
fn opt(v: Option<&str>) -> Resolved {
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
    pub fn type_name(&self, world: &World) -> &'static str {
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
            Obj::Query => query(ex, field, args, path),
            Obj::Account(a) => account(ex, *a, field, args, path),
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

fn query<'a>(
    ex: &mut Exec<'a>,
    field: &Field<'a, &'a str>,
    args: &Args,
    path: &[Json],
) -> Resolved {
    let found = args.str("login").and_then(|l| ex.world.index(l));
    let kind_of = |a: usize| ex.world.accounts[a].kind;
    match field.name {
        "viewer" => Resolved::Obj(Obj::Account(ex.world.viewer)),
        "repositoryOwner" => found.map_or(Resolved::Null, |a| Resolved::Obj(Obj::Account(a))),
        "user" | "organization" => {
            let (kind, article) = if field.name == "user" {
                (AccountKind::User, "a User")
            } else {
                (AccountKind::Organization, "an Organization")
            };
            match found.filter(|a| kind_of(*a) == kind) {
                Some(a) => Resolved::Obj(Obj::Account(a)),
                None => {
                    ex.errors.push(json!({
                        "type": "NOT_FOUND",
                        "path": path,
                        "locations": locations(field.position),
                        "message": format!(
                            "Could not resolve to {article} with the login of '{}'.",
                            args.str("login").unwrap_or_default()
                        ),
                    }));
                    Resolved::Null
                }
            }
        }
        _ => Resolved::Null,
    }
}

fn account<'a>(
    ex: &mut Exec<'a>,
    a: usize,
    field: &Field<'a, &'a str>,
    args: &Args,
    path: &[Json],
) -> Resolved {
    let w = &ex.world;
    let acc = &w.accounts[a];
    let active_only = args.bool_or("activeOnly", true);
    let active = |sp: &Sp| sp.s.is_active || !active_only;
    match field.name {
        "id" => s(&acc.node_id()),
        "databaseId" => i(acc.id as i64),
        "login" => s(&acc.login),
        "name" => opt(acc.name.as_deref()),
        "email" => match (acc.kind, acc.email.as_deref()) {
            (AccountKind::User, email) => s(email.unwrap_or("")),
            (AccountKind::Organization, email) => opt(email),
        },
        "avatarUrl" => s(&format!("{}/avatars/{}", w.base, acc.id)),
        "url" => s(&format!("{}/{}", w.base, acc.login)),
        "resourcePath" => s(&format!("/{}", acc.login)),
        "isViewer" => b(a == w.viewer),
        "company" | "bio" | "location" | "description" => Resolved::Null,
        "hasSponsorsListing" => b(acc.sponsorable),
        "viewerCanSponsor" => b(acc.sponsorable && a != w.viewer),
        "viewerIsSponsoring" => b(w.sponsorship(w.viewer, a).is_some_and(|sp| sp.s.is_active)),
        "isSponsoringViewer" => b(w.sponsorship(a, w.viewer).is_some_and(|sp| sp.s.is_active)),
        "isSponsoredBy" => {
            let sponsor = args.str("accountLogin").and_then(|l| w.index(l));
            b(sponsor
                .and_then(|sp| w.sponsorship(sp, a))
                .is_some_and(|sp| {
                    sp.s.is_active
                        && (sp.s.privacy == Privacy::Public
                            || w.viewer_manages(a)
                            || sp.sponsor == w.viewer)
                }))
        }
        "sponsorshipForViewerAsSponsor" => w
            .sponsorship(w.viewer, a)
            .filter(active)
            .map_or(Resolved::Null, |sp| {
                Resolved::Obj(Obj::Sponsorship(Box::new(sp)))
            }),
        "sponsorshipForViewerAsSponsorable" => w
            .sponsorship(a, w.viewer)
            .filter(active)
            .map_or(Resolved::Null, |sp| {
                Resolved::Obj(Obj::Sponsorship(Box::new(sp)))
            }),
        "sponsorshipsAsSponsor" => {
            let logins = args.strings("maintainerLogins");
            let all_visible = w.viewer_manages(a);
            let items: Vec<Sp> = acc
                .sponsoring
                .iter()
                .filter_map(|(login, _)| w.index(login).and_then(|t| w.sponsorship(a, t)))
                .filter(|sp| active(sp))
                .filter(|sp| all_visible || sp.s.privacy == Privacy::Public)
                .filter(|sp| {
                    let target = &w.accounts[sp.sponsorable].login;
                    logins
                        .as_ref()
                        .is_none_or(|l| l.iter().any(|x| x.eq_ignore_ascii_case(target)))
                })
                .collect();
            connection(ex, items, field, args, path)
        }
        "sponsorshipsAsMaintainer" => {
            let include_private = args.bool_or("includePrivate", false);
            let items: Vec<Sp> = if w.viewer_manages(a) {
                (0..w.accounts.len())
                    .filter_map(|sponsor| w.sponsorship(sponsor, a))
                    .filter(|sp| active(sp))
                    .filter(|sp| include_private || sp.s.privacy == Privacy::Public)
                    .collect()
            } else {
                Vec::new()
            };
            connection(ex, items, field, args, path)
        }
        _ => Resolved::Null,
    }
}

fn connection<'a>(
    ex: &mut Exec<'a>,
    mut items: Vec<Sp>,
    field: &Field<'a, &'a str>,
    args: &Args,
    path: &[Json],
) -> Resolved {
    // Default order: created-at ascending (GitHub's "relevance" is unspecified).
    items.sort_by(|x, y| x.s.created_at.cmp(&y.s.created_at));
    let descending = args
        .get("orderBy")
        .and_then(|o| o.get("direction"))
        .and_then(Json::as_str)
        == Some("DESC");
    if descending {
        items.reverse();
    }
    match paginate(items, field, args, path) {
        Ok(page) => Resolved::Obj(Obj::Connection(Box::new(page))),
        Err(error) => {
            ex.fatal(error);
            Resolved::Null
        }
    }
}

fn sponsorship(w: &World, sp: &Sp, name: &str) -> Resolved {
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
