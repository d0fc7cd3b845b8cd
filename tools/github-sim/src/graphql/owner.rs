//! Resolvers of `Query` and of the account types (`User`, `Organization`),
//! with GitHub's visibility rules for sponsorships.

use graphql_parser::query::Field;
use serde_json::{json, Value as Json};

use super::exec::{locations, Args, Exec};
use super::paging::paginate;
use super::resolve::{b, i, opt, s, Obj, Resolved, Sp};
use crate::fixtures::{AccountKind, Privacy};

pub(super) fn query<'a>(
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

pub(super) fn account<'a>(
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
