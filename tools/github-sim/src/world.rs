//! The default world: fixed ids and sponsorships the app's tests rely on.

use crate::clock;
use crate::fixtures::{email, AccountKind, FixtureSponsorship, FixtureUser};

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
        "sponsors project-001…project-130 and acme-org (131); acme-org at $25/month is #121 by date",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::Privacy;

    fn get<'a>(world: &'a [FixtureUser], login: &str) -> &'a FixtureUser {
        world.iter().find(|u| u.login == login).unwrap()
    }

    #[test]
    fn fixed_ids_and_sponsorships() {
        let world = fixtures();
        let expected = [
            ("alice", 1001),
            ("bob", 1002),
            ("carol", 1003),
            ("dave", 1004),
            ("erin", 1005),
            ("frank", 1006),
            ("grace", 1007),
            ("heidi", 1008),
            ("acme-admin", 1009),
            ("maintainer-mia", 9002),
            ("acme-org", 9001),
        ];
        for (login, id) in expected {
            assert_eq!(get(&world, login).id, id, "{login}");
        }
        assert_eq!(get(&world, "acme-org").kind, AccountKind::Organization);
        assert_eq!(get(&world, "acme-org").admins, vec!["acme-admin"]);
        assert!(get(&world, "bob").sponsoring.is_empty());
        assert!(get(&world, "grace").email.is_none());
        assert_eq!(
            get(&world, "heidi").sponsoring[0].1.privacy,
            Privacy::Private
        );
        assert!(get(&world, "erin").sponsoring[0].1.is_one_time);
        assert_eq!(
            get(&world, "frank").sponsoring[0].1.monthly_price_in_cents,
            100
        );

        let mut dave = get(&world, "dave").sponsoring.clone();
        assert_eq!(dave.len(), 131);
        dave.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at));
        assert_eq!(dave[120].0, "acme-org");
        assert_eq!(dave[120].1.monthly_price_in_cents, 2500);
        let mut dates: Vec<&str> = dave.iter().map(|(_, s)| s.created_at.as_str()).collect();
        dates.dedup();
        assert_eq!(dates.len(), 131, "created-at order is total");
        assert!(world
            .iter()
            .all(|u| u.description.starts_with(&format!("{} — ", u.login))));
    }
}
