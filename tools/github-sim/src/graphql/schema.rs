//! The subset of GitHub's GraphQL schema the simulator serves (names and
//! argument lists as in `graphql/schema/github.docs.graphql`).

/// What kind of type a name denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Interface,
    Union,
    Scalar,
    Enum,
}

impl Kind {
    pub fn is_leaf(self) -> bool {
        matches!(self, Kind::Scalar | Kind::Enum)
    }
}

/// One argument of a field: name, type (GraphQL notation), required.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arg {
    pub name: &'static str,
    pub ty: &'static str,
    pub required: bool,
}

/// A field: its named return type (lists are told by the resolver) and arguments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldDef {
    pub ty: &'static str,
    pub args: &'static [Arg],
}

const fn arg(name: &'static str, ty: &'static str) -> Arg {
    Arg {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: &'static str) -> Arg {
    Arg {
        name,
        ty,
        required: true,
    }
}

const fn f(ty: &'static str) -> Option<FieldDef> {
    Some(FieldDef { ty, args: &[] })
}

const LOGIN: &[Arg] = &[req("login", "String!")];
const SIZE: &[Arg] = &[arg("size", "Int")];
const ACCOUNT_LOGIN: &[Arg] = &[req("accountLogin", "String!")];
const ACTIVE_ONLY: &[Arg] = &[arg("activeOnly", "Boolean")];
const AS_SPONSOR: &[Arg] = &[
    arg("activeOnly", "Boolean"),
    arg("after", "String"),
    arg("before", "String"),
    arg("first", "Int"),
    arg("last", "Int"),
    arg("maintainerLogins", "[String!]"),
    arg("orderBy", "SponsorshipOrder"),
];
const AS_MAINTAINER: &[Arg] = &[
    arg("activeOnly", "Boolean"),
    arg("after", "String"),
    arg("before", "String"),
    arg("first", "Int"),
    arg("includePrivate", "Boolean"),
    arg("last", "Int"),
    arg("orderBy", "SponsorshipOrder"),
];

/// Concrete object types of an abstract type (or the type itself).
pub(crate) fn possible_types(ty: &str) -> &'static [&'static str] {
    const OWNERS: &[&str] = &["User", "Organization"];
    match ty {
        "RepositoryOwner" | "Sponsorable" | "Sponsor" | "Actor" | "Node" | "ProfileOwner" => OWNERS,
        "User" => &["User"],
        "Organization" => &["Organization"],
        "Query" => &["Query"],
        "Sponsorship" => &["Sponsorship"],
        "SponsorsTier" => &["SponsorsTier"],
        "SponsorshipConnection" => &["SponsorshipConnection"],
        "SponsorshipEdge" => &["SponsorshipEdge"],
        "PageInfo" => &["PageInfo"],
        _ => &[],
    }
}

const TYPES: &[(&str, Kind)] = &[
    ("Query", Kind::Object),
    ("User", Kind::Object),
    ("Organization", Kind::Object),
    ("Sponsorship", Kind::Object),
    ("SponsorsTier", Kind::Object),
    ("SponsorshipConnection", Kind::Object),
    ("SponsorshipEdge", Kind::Object),
    ("PageInfo", Kind::Object),
    ("RepositoryOwner", Kind::Interface),
    ("Sponsorable", Kind::Interface),
    ("Actor", Kind::Interface),
    ("Node", Kind::Interface),
    ("ProfileOwner", Kind::Interface),
    ("Sponsor", Kind::Union),
    ("ID", Kind::Scalar),
    ("String", Kind::Scalar),
    ("Int", Kind::Scalar),
    ("Boolean", Kind::Scalar),
    ("DateTime", Kind::Scalar),
    ("URI", Kind::Scalar),
    ("HTML", Kind::Scalar),
    ("SponsorshipPrivacy", Kind::Enum),
    ("SponsorshipPaymentSource", Kind::Enum),
];

/// The schema's own name and kind for a type name, `None` when unknown.
pub(crate) fn lookup(ty: &str) -> Option<(&'static str, Kind)> {
    TYPES.iter().find(|(name, _)| *name == ty).copied()
}

/// The kind of a type name, `None` when the schema has no such type.
pub(crate) fn kind(ty: &str) -> Option<Kind> {
    lookup(ty).map(|(_, kind)| kind)
}

/// `true` when an object of concrete type `concrete` matches condition `cond`.
pub(crate) fn applies(concrete: &str, cond: &str) -> bool {
    concrete == cond || possible_types(cond).contains(&concrete)
}

/// The field `name` of type `ty` (`__typename` is handled by the caller).
pub(crate) fn field(ty: &str, name: &str) -> Option<FieldDef> {
    match ty {
        "Query" => match name {
            "viewer" => f("User"),
            "repositoryOwner" => Some(FieldDef {
                ty: "RepositoryOwner",
                args: LOGIN,
            }),
            "user" => Some(FieldDef {
                ty: "User",
                args: LOGIN,
            }),
            "organization" => Some(FieldDef {
                ty: "Organization",
                args: LOGIN,
            }),
            _ => None,
        },
        "User" => owner(name)
            .or_else(|| sponsorable(name))
            .or_else(|| profile(name))
            .or_else(|| match name {
                "isViewer" => f("Boolean"),
                "company" | "bio" | "location" => f("String"),
                _ => None,
            }),
        "Organization" => owner(name)
            .or_else(|| sponsorable(name))
            .or_else(|| profile(name))
            .or_else(|| match name {
                "description" => f("String"),
                _ => None,
            }),
        "RepositoryOwner" | "Actor" => owner(name).filter(|_| name != "databaseId"),
        "Node" => (name == "id").then_some(FieldDef {
            ty: "ID",
            args: &[],
        }),
        "ProfileOwner" => profile(name).or_else(|| owner(name).filter(|_| name != "databaseId")),
        "Sponsorable" => sponsorable(name),
        "SponsorshipConnection" => match name {
            "totalCount"
            | "totalRecurringMonthlyPriceInCents"
            | "totalRecurringMonthlyPriceInDollars" => f("Int"),
            "pageInfo" => f("PageInfo"),
            "nodes" => f("Sponsorship"),
            "edges" => f("SponsorshipEdge"),
            _ => None,
        },
        "SponsorshipEdge" => match name {
            "cursor" => f("String"),
            "node" => f("Sponsorship"),
            _ => None,
        },
        "PageInfo" => match name {
            "hasNextPage" | "hasPreviousPage" => f("Boolean"),
            "startCursor" | "endCursor" => f("String"),
            _ => None,
        },
        "Sponsorship" => match name {
            "id" => f("ID"),
            "isActive" | "isOneTimePayment" | "isSponsorOptedIntoEmail" => f("Boolean"),
            "createdAt" | "tierSelectedAt" => f("DateTime"),
            "privacyLevel" => f("SponsorshipPrivacy"),
            "paymentSource" => f("SponsorshipPaymentSource"),
            "tier" => f("SponsorsTier"),
            "sponsorEntity" => f("Sponsor"),
            "sponsorable" => f("Sponsorable"),
            "sponsor" | "maintainer" => f("User"),
            _ => None,
        },
        "SponsorsTier" => match name {
            "id" => f("ID"),
            "name" | "description" => f("String"),
            "monthlyPriceInCents" | "monthlyPriceInDollars" => f("Int"),
            "isOneTime" | "isCustomAmount" => f("Boolean"),
            _ => None,
        },
        _ => None,
    }
}

fn owner(name: &str) -> Option<FieldDef> {
    match name {
        "id" => f("ID"),
        "login" => f("String"),
        "databaseId" => f("Int"),
        "avatarUrl" => Some(FieldDef {
            ty: "URI",
            args: SIZE,
        }),
        "url" | "resourcePath" => f("URI"),
        _ => None,
    }
}

fn profile(name: &str) -> Option<FieldDef> {
    match name {
        "name" | "email" => f("String"),
        _ => None,
    }
}

fn sponsorable(name: &str) -> Option<FieldDef> {
    let with = |ty, args| Some(FieldDef { ty, args });
    match name {
        "viewerIsSponsoring" | "viewerCanSponsor" | "isSponsoringViewer" | "hasSponsorsListing" => {
            f("Boolean")
        }
        "isSponsoredBy" => with("Boolean", ACCOUNT_LOGIN),
        "sponsorshipForViewerAsSponsor" | "sponsorshipForViewerAsSponsorable" => {
            with("Sponsorship", ACTIVE_ONLY)
        }
        "sponsorshipsAsSponsor" => with("SponsorshipConnection", AS_SPONSOR),
        "sponsorshipsAsMaintainer" => with("SponsorshipConnection", AS_MAINTAINER),
        _ => None,
    }
}
