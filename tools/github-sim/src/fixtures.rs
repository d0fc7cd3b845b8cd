//! The default world: fixture accounts with fixed ids and their sponsorships.

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
    fn new(login: &str, id: u64, kind: AccountKind, description: &str) -> Self {
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

    fn person(login: &str, id: u64, name: &str, public_email: bool, description: &str) -> Self {
        let address = format!("{login}@example.com");
        FixtureUser {
            name: Some(name.to_string()),
            email: public_email.then(|| address.clone()),
            emails: vec![email(&address, true, true, Some("public"))],
            ..Self::new(login, id, AccountKind::User, description)
        }
    }

    fn sponsors(mut self, sponsorable: &str, s: FixtureSponsorship) -> Self {
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

fn email(address: &str, primary: bool, verified: bool, visibility: Option<&str>) -> FixtureEmail {
    FixtureEmail {
        email: address.to_string(),
        primary,
        verified,
        visibility: visibility.map(str::to_string),
    }
}

/// Fixture timestamp: `day` days after 2023-01-01T00:00:00Z plus `hours`.
fn at(day: u64, hours: u64) -> String {
    clock::rfc3339(1_672_531_200 + day * 86_400 + hours * 3_600)
}

fn monthly_at(cents: u32, when: String) -> FixtureSponsorship {
    FixtureSponsorship::monthly(cents).created_at(&when)
}

/// The default world. Ids are fixed; the app's tests rely on them.
pub fn fixtures() -> Vec<FixtureUser> {
    let mut acme = FixtureUser::new(
        "acme-org",
        9001,
        AccountKind::Organization,
        "organization with a Sponsors profile; admin: acme-admin",
    );
    acme.name = Some("Acme Open Source".into());
    acme.admins = vec!["acme-admin".into()];
    acme.sponsorable = true;

    let mut mia = FixtureUser::person(
        "maintainer-mia",
        9002,
        "Mia Maintainer",
        true,
        "a user with a Sponsors profile; sponsored by carol",
    );
    mia.sponsorable = true;

    let alice = FixtureUser::person(
        "alice",
        1001,
        "Alice Anders",
        true,
        "sponsors acme-org at $10/month",
    )
    .sponsors("acme-org", monthly_at(1000, at(380, 10)));
    let bob = FixtureUser::person("bob", 1002, "Bob Brown", true, "sponsors nobody");
    let carol = FixtureUser::person(
        "carol",
        1003,
        "Carol Chen",
        true,
        "sponsors maintainer-mia (a user) at $5/month",
    )
    .sponsors("maintainer-mia", monthly_at(500, at(396, 9)));

    let mut dave = FixtureUser::person(
        "dave",
        1004,
        "Dave Dunn",
        true,
        "sponsors 131 accounts; acme-org at $25/month is #121 by date",
    );
    let mut projects = Vec::new();
    for k in 1..=130u64 {
        let login = format!("project-{k:03}");
        let mut p = FixtureUser::new(
            &login,
            20_000 + k,
            AccountKind::User,
            "sponsorable user; sponsored by dave at $2/month",
        );
        p.listed = false;
        p.sponsorable = true;
        p.emails = vec![email(&format!("{login}@example.com"), true, true, None)];
        dave = dave.sponsors(&login, monthly_at(200, at(k - 1, 0)));
        if k == 120 {
            dave = dave.sponsors("acme-org", monthly_at(2500, at(k - 1, 12)));
        }
        projects.push(p);
    }

    let erin = FixtureUser::person(
        "erin",
        1005,
        "Erin Evans",
        true,
        "one-time $50 payment to acme-org",
    )
    .sponsors(
        "acme-org",
        FixtureSponsorship::one_time(5000).created_at(&at(495, 0)),
    );
    let frank = FixtureUser::person(
        "frank",
        1006,
        "Frank Foster",
        true,
        "sponsors acme-org at $1/month (below a $5 minimum)",
    )
    .sponsors(
        "acme-org",
        FixtureSponsorship {
            tier_name: "$1 a month (custom)".into(),
            ..monthly_at(100, at(427, 15))
        }
        .custom_amount(),
    );
    let mut grace = FixtureUser::person(
        "grace",
        1007,
        "Grace Green",
        false,
        "no public email; primary verified address only in /user/emails; not a sponsor",
    );
    grace.emails = vec![
        email("grace-old@example.net", false, false, None),
        email("grace@work.example.org", false, true, None),
        email("1007+grace@users.noreply.github.com", false, true, None),
        email("grace@users.example.com", true, true, Some("private")),
    ];
    let heidi = FixtureUser::person(
        "heidi",
        1008,
        "Heidi Hall",
        true,
        "sponsors acme-org privately at $10/month",
    )
    .sponsors("acme-org", monthly_at(1000, at(459, 8)).private());
    let admin = FixtureUser::person(
        "acme-admin",
        1009,
        "Acme Admin",
        true,
        "admin of acme-org: can list its sponsors, private ones included",
    );

    let mut all = vec![
        alice, bob, carol, dave, erin, frank, grace, heidi, admin, mia, acme,
    ];
    all.extend(projects);
    all
}
