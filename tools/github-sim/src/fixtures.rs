//! Fixture types: accounts, their e-mail addresses and sponsorships.

use crate::clock;

/// A GitHub account kind (`type` in REST, `__typename` in GraphQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountKind {
    User,
    Organization,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "User",
            AccountKind::Organization => "Organization",
        }
    }
}

/// Visibility of a sponsorship (`privacyLevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privacy {
    Public,
    Private,
}

/// One entry of `GET /user/emails`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
    /// `"public"`, `"private"` or `None` (JSON null).
    pub visibility: Option<String>,
}

/// A sponsorship of one account by another (the sponsor and the sponsorable
/// are given where it is stored: [`FixtureUser::sponsoring`] or
/// [`crate::GithubSim::set_sponsorship`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureSponsorship {
    /// Amount in US cents (per month, or the one-time amount).
    pub monthly_price_in_cents: u32,
    /// `isOneTimePayment` and `tier.isOneTime`.
    pub is_one_time: bool,
    pub privacy: Privacy,
    /// `isActive`; `activeOnly: true` (the default) hides inactive ones.
    pub is_active: bool,
    /// RFC 3339 UTC (`2024-01-15T10:00:00Z`); also the paging order.
    pub created_at: String,
    /// `tierSelectedAt`.
    pub tier_selected_at: String,
    /// `tier.name`, e.g. `$10 a month`.
    pub tier_name: String,
    /// `tier.isCustomAmount`.
    pub is_custom_amount: bool,
}

impl FixtureSponsorship {
    /// A public, active, recurring sponsorship created now.
    pub fn monthly(cents: u32) -> Self {
        let now = clock::rfc3339(clock::unix_now());
        FixtureSponsorship {
            monthly_price_in_cents: cents,
            is_one_time: false,
            privacy: Privacy::Public,
            is_active: true,
            created_at: now.clone(),
            tier_selected_at: now,
            tier_name: format!("${} a month", cents / 100),
            is_custom_amount: false,
        }
    }

    /// A public, active, one-time payment created now.
    pub fn one_time(cents: u32) -> Self {
        FixtureSponsorship {
            is_one_time: true,
            tier_name: format!("${} one time", cents / 100),
            ..Self::monthly(cents)
        }
    }

    /// The same, with `privacyLevel: PRIVATE`.
    pub fn private(self) -> Self {
        FixtureSponsorship {
            privacy: Privacy::Private,
            ..self
        }
    }

    /// The same, ended (`isActive: false`): a past sponsor.
    pub fn ended(self) -> Self {
        FixtureSponsorship {
            is_active: false,
            ..self
        }
    }

    /// The same, with a custom amount chosen at checkout.
    pub fn custom_amount(self) -> Self {
        FixtureSponsorship {
            is_custom_amount: true,
            ..self
        }
    }

    /// The same, created (and tier selected) at `rfc3339`.
    pub fn created_at(self, rfc3339: &str) -> Self {
        FixtureSponsorship {
            created_at: rfc3339.to_string(),
            tier_selected_at: rfc3339.to_string(),
            ..self
        }
    }
}

/// A fixture account (user or organization).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureUser {
    pub login: String,
    /// GitHub's numeric id (`databaseId` in GraphQL).
    pub id: u64,
    pub kind: AccountKind,
    pub name: Option<String>,
    /// The public profile email (`GET /user` `email`; GraphQL `""` when `None`).
    pub email: Option<String>,
    /// What `GET /user/emails` lists.
    pub emails: Vec<FixtureEmail>,
    /// One line, shown on the sign-in page.
    pub description: String,
    /// Organizations: logins that administer it (may read its sponsors).
    pub admins: Vec<String>,
    /// Shown as a button on the sign-in page.
    pub listed: bool,
    /// Whether it has a GitHub Sponsors profile (`hasSponsorsListing`).
    pub sponsorable: bool,
    /// Sponsorable login and sponsorship, for every account this one sponsors.
    pub sponsoring: Vec<(String, FixtureSponsorship)>,
}

impl FixtureUser {
    pub(crate) fn new(login: &str, id: u64, kind: AccountKind, description: &str) -> Self {
        FixtureUser {
            login: login.to_string(),
            id,
            kind,
            name: None,
            email: None,
            emails: Vec::new(),
            description: format!("{login} — {description}"),
            admins: Vec::new(),
            listed: kind == AccountKind::User,
            sponsorable: false,
            sponsoring: Vec::new(),
        }
    }

    pub(crate) fn person(
        login: &str,
        id: u64,
        name: &str,
        public_email: bool,
        description: &str,
    ) -> Self {
        let address = format!("{login}@example.com");
        FixtureUser {
            name: Some(name.to_string()),
            email: public_email.then(|| address.clone()),
            emails: vec![email(&address, true, true, Some("public"))],
            ..Self::new(login, id, AccountKind::User, description)
        }
    }

    pub(crate) fn sponsors(mut self, sponsorable: &str, s: FixtureSponsorship) -> Self {
        self.sponsoring.push((sponsorable.to_string(), s));
        self
    }

    /// GraphQL global id, same as REST `node_id` (legacy format, e.g. `MDQ6VXNlcjE=`).
    pub fn node_id(&self) -> String {
        use base64::Engine;
        let raw = match self.kind {
            AccountKind::User => format!("04:User{}", self.id),
            AccountKind::Organization => format!("012:Organization{}", self.id),
        };
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

pub(crate) fn email(
    address: &str,
    primary: bool,
    verified: bool,
    visibility: Option<&str>,
) -> FixtureEmail {
    FixtureEmail {
        email: address.to_string(),
        primary,
        verified,
        visibility: visibility.map(str::to_string),
    }
}
