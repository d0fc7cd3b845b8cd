//! `POST /graphql` with the app's own documents and GitHub's error shapes.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly, where it is"
)]

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

async fn viewer_sponsorship(sim: &GithubSim, login: &str, sponsorable: &str) -> Value {
    let token = sim.issue_token(login, SCOPES);
    let (status, body) = gql(
        sim,
        &token,
        VIEWER_SPONSORSHIP,
        json!({"sponsorable": sponsorable}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    body
}

#[tokio::test]
async fn alice_sponsors_the_org_at_ten_dollars() {
    let sim = sim().await;
    let body = viewer_sponsorship(&sim, "alice", "acme-org").await;
    assert_eq!(
        body["data"]["viewer"],
        json!({"databaseId": 1001, "login": "alice"})
    );
    let owner = &body["data"]["repositoryOwner"];
    assert_eq!(owner["__typename"], "Organization");
    assert_eq!(owner["login"], "acme-org");
    let s = &owner["sponsorshipForViewerAsSponsor"];
    assert_eq!(s["isActive"], true);
    assert_eq!(s["isOneTimePayment"], false);
    assert!(s["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        s["tier"],
        json!({"name": "$10 a month", "monthlyPriceInCents": 1000, "isOneTime": false, "isCustomAmount": false})
    );
}

#[tokio::test]
async fn results_keep_the_query_field_order() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);
    let resp = client()
        .post(format!("{}/graphql", sim.url()))
        .bearer_auth(&token)
        .json(&json!({"query": "{ viewer { login databaseId __typename } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-ratelimit-resource"], "graphql");
    let text = resp.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"data":{"viewer":{"login":"alice","databaseId":1001,"__typename":"User"}}}"#
    );
}

#[tokio::test]
async fn carol_sponsors_a_user_account_and_not_the_org() {
    let sim = sim().await;
    let body = viewer_sponsorship(&sim, "carol", "maintainer-mia").await;
    let owner = &body["data"]["repositoryOwner"];
    assert_eq!(owner["__typename"], "User");
    assert_eq!(owner["login"], "maintainer-mia");
    assert_eq!(
        owner["sponsorshipForViewerAsSponsor"]["tier"]["monthlyPriceInCents"],
        500
    );

    let body = viewer_sponsorship(&sim, "carol", "acme-org").await;
    assert!(body["data"]["repositoryOwner"]["sponsorshipForViewerAsSponsor"].is_null());
    let body = viewer_sponsorship(&sim, "bob", "acme-org").await;
    assert!(body["data"]["repositoryOwner"]["sponsorshipForViewerAsSponsor"].is_null());
    assert_eq!(body["data"]["viewer"]["databaseId"], 1002);
}

#[tokio::test]
async fn erin_frank_heidi_dave_as_seen_by_the_viewer_query() {
    let sim = sim().await;
    let s = |b: Value| b["data"]["repositoryOwner"]["sponsorshipForViewerAsSponsor"].clone();

    let erin = s(viewer_sponsorship(&sim, "erin", "acme-org").await);
    assert_eq!(erin["isActive"], true);
    assert_eq!(erin["isOneTimePayment"], true);
    assert_eq!(erin["tier"]["isOneTime"], true);
    assert_eq!(erin["tier"]["monthlyPriceInCents"], 5000);

    let frank = s(viewer_sponsorship(&sim, "frank", "acme-org").await);
    assert_eq!(frank["tier"]["monthlyPriceInCents"], 100);
    assert_eq!(frank["tier"]["isCustomAmount"], true);

    // A private sponsorship is visible to the sponsor.
    let heidi = s(viewer_sponsorship(&sim, "heidi", "acme-org").await);
    assert_eq!(heidi["tier"]["monthlyPriceInCents"], 1000);

    // dave sponsors 131 accounts; the direct lookup needs no paging.
    let dave = s(viewer_sponsorship(&sim, "dave", "acme-org").await);
    assert_eq!(dave["tier"]["monthlyPriceInCents"], 2500);
}

const BATCH: &str = r#"
query ViewerSponsorships($logins: [String!], $after: String) {
  viewer {
    sponsorshipsAsSponsor(first: 100, after: $after, activeOnly: true, maintainerLogins: $logins) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        privacyLevel
        sponsorable { __typename ... on User { login databaseId } ... on Organization { login databaseId } }
        tier { monthlyPriceInCents }
      }
    }
  }
}"#;

#[tokio::test]
async fn dave_pages_through_131_sponsorships_and_acme_org_is_121st() {
    let sim = sim().await;
    let token = sim.issue_token("dave", SCOPES);
    let mut after = Value::Null;
    let mut logins = Vec::new();
    let mut pages = Vec::new();
    loop {
        let (status, body) = gql(&sim, &token, BATCH, json!({"after": after})).await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        let conn = &body["data"]["viewer"]["sponsorshipsAsSponsor"];
        assert_eq!(conn["totalCount"], 131);
        let nodes = conn["nodes"].as_array().unwrap();
        pages.push(nodes.len());
        logins.extend(
            nodes
                .iter()
                .map(|n| n["sponsorable"]["login"].as_str().unwrap().to_string()),
        );
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
        assert!(after.is_string());
    }
    assert_eq!(pages, vec![100, 31]);
    assert_eq!(logins.len(), 131);
    assert_eq!(
        logins.iter().collect::<BTreeSet<_>>().len(),
        131,
        "no duplicates"
    );
    assert_eq!(logins[120], "acme-org");
    assert!(
        !logins[..100].contains(&"acme-org".to_string()),
        "acme-org is on page 2"
    );

    // maintainerLogins narrows to the one wanted (case-insensitively).
    let (_, body) = gql(&sim, &token, BATCH, json!({"logins": ["ACME-ORG"]})).await;
    let conn = &body["data"]["viewer"]["sponsorshipsAsSponsor"];
    assert_eq!(conn["totalCount"], 1);
    assert_eq!(
        conn["nodes"][0]["sponsorable"],
        json!({"__typename": "Organization", "login": "acme-org", "databaseId": 9001})
    );
    assert_eq!(conn["nodes"][0]["tier"]["monthlyPriceInCents"], 2500);
}

/// Pages the app's maintainer query to the end; returns (sponsor id, node).
async fn maintainer_pages(
    sim: &GithubSim,
    token: &str,
    doc: &str,
    sponsorable: &str,
) -> (Vec<(i64, Value)>, usize) {
    let mut after = Value::Null;
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = gql(
            sim,
            token,
            doc,
            json!({"sponsorable": sponsorable, "after": after}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        let owner = &body["data"]["repositoryOwner"];
        assert_eq!(owner["login"], sponsorable);
        let conn = &owner["sponsorshipsAsMaintainer"];
        pages += 1;
        for node in conn["nodes"].as_array().unwrap() {
            out.push((
                node["sponsorEntity"]["databaseId"].as_i64().unwrap(),
                node.clone(),
            ));
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            assert_eq!(conn["totalCount"].as_u64().unwrap() as usize, out.len());
            return (out, pages);
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn maintainer_query_lists_every_current_sponsor_for_the_admin() {
    let sim = sim().await;
    let token = sim.issue_token("acme-admin", SCOPES);
    let (all, pages) = maintainer_pages(&sim, &token, SPONSORABLE_SPONSORSHIPS, "acme-org").await;
    assert_eq!(pages, 1);
    let ids: BTreeSet<i64> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        BTreeSet::from([1001, 1004, 1005, 1006, 1008]),
        "heidi (private) included"
    );
    let by_id = |id: i64| all.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    assert_eq!(by_id(1005)["isOneTimePayment"], true);
    assert_eq!(
        by_id(1005)["tier"],
        json!({"monthlyPriceInCents": 5000, "isOneTime": true})
    );
    assert_eq!(by_id(1004)["tier"]["monthlyPriceInCents"], 2500);
    assert_eq!(
        by_id(1001)["sponsorEntity"],
        json!({"__typename": "User", "databaseId": 1001, "login": "alice"})
    );

    // The same document with small pages walks the cursors to the same set.
    let small = SPONSORABLE_SPONSORSHIPS.replace("first: 100", "first: 2");
    assert_ne!(small, SPONSORABLE_SPONSORSHIPS);
    let (paged, pages) = maintainer_pages(&sim, &token, &small, "acme-org").await;
    assert_eq!(pages, 3);
    assert_eq!(
        paged.iter().map(|(id, _)| *id).collect::<BTreeSet<_>>(),
        ids
    );
    assert_eq!(paged.len(), 5);

    // includePrivate defaults to false: heidi disappears.
    let public = if SPONSORABLE_SPONSORSHIPS.contains(", includePrivate: true") {
        SPONSORABLE_SPONSORSHIPS.replace(", includePrivate: true", "")
    } else {
        let kept: Vec<&str> = SPONSORABLE_SPONSORSHIPS
            .lines()
            .filter(|l| !l.contains("includePrivate"))
            .collect();
        kept.join("\n")
    };
    assert_ne!(public, SPONSORABLE_SPONSORSHIPS);
    let (visible, _) = maintainer_pages(&sim, &token, &public, "acme-org").await;
    let ids: BTreeSet<i64> = visible.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, BTreeSet::from([1001, 1004, 1005, 1006]));
}

#[tokio::test]
async fn maintainer_query_is_empty_for_outsiders_and_works_for_a_user_sponsorable() {
    let sim = sim().await;
    let alice = sim.issue_token("alice", SCOPES);
    let (all, _) = maintainer_pages(&sim, &alice, SPONSORABLE_SPONSORSHIPS, "acme-org").await;
    assert!(all.is_empty());

    let mia = sim.issue_token("maintainer-mia", SCOPES);
    let (all, _) = maintainer_pages(&sim, &mia, SPONSORABLE_SPONSORSHIPS, "maintainer-mia").await;
    assert_eq!(
        all.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![1003]
    );
}

#[tokio::test]
async fn world_changes_at_run_time() {
    let sim = sim().await;
    let active = "query($s: String!, $a: Boolean) { repositoryOwner(login: $s) { ... on Sponsorable { viewerIsSponsoring sponsorshipForViewerAsSponsor(activeOnly: $a) { isActive tier { monthlyPriceInCents } } } } }";
    let token = sim.issue_token("alice", SCOPES);

    sim.set_sponsorship(
        "alice",
        "acme-org",
        Some(FixtureSponsorship::monthly(1000).ended()),
    );
    let (_, body) = gql(&sim, &token, active, json!({"s": "acme-org"})).await;
    assert_eq!(body["data"]["repositoryOwner"]["viewerIsSponsoring"], false);
    assert!(body["data"]["repositoryOwner"]["sponsorshipForViewerAsSponsor"].is_null());
    let (_, body) = gql(&sim, &token, active, json!({"s": "acme-org", "a": false})).await;
    assert_eq!(
        body["data"]["repositoryOwner"]["sponsorshipForViewerAsSponsor"]["isActive"],
        false
    );

    sim.set_sponsorship("alice", "acme-org", Some(FixtureSponsorship::monthly(2500)));
    let (_, body) = gql(&sim, &token, active, json!({"s": "acme-org"})).await;
    assert_eq!(
        body["data"]["repositoryOwner"]["sponsorshipForViewerAsSponsor"]["tier"]
            ["monthlyPriceInCents"],
        2500
    );

    sim.set_sponsorship("alice", "acme-org", None);
    let (_, body) = gql(&sim, &token, active, json!({"s": "acme-org", "a": false})).await;
    assert!(body["data"]["repositoryOwner"]["sponsorshipForViewerAsSponsor"].is_null());

    let bob = sim.issue_token("bob", SCOPES);
    sim.set_sponsorship("bob", "acme-org", Some(FixtureSponsorship::monthly(700)));
    let (_, body) = gql(&sim, &bob, active, json!({"s": "acme-org"})).await;
    assert_eq!(body["data"]["repositoryOwner"]["viewerIsSponsoring"], true);
    let bob_entry = sim.users().into_iter().find(|u| u.login == "bob").unwrap();
    assert_eq!(bob_entry.sponsoring.len(), 1);
}

#[tokio::test]
async fn unknown_logins_not_found_and_organizations_are_not_users() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);
    let (status, body) = gql(
        &sim,
        &token,
        VIEWER_SPONSORSHIP,
        json!({"sponsorable": "nobody-here"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["data"]["repositoryOwner"].is_null());
    assert_eq!(body["data"]["viewer"]["login"], "alice");

    let (_, body) = gql(
        &sim,
        &token,
        "{ user(login: \"acme-org\") { login } organization(login: \"acme-org\") { databaseId } }",
        json!({}),
    )
    .await;
    assert!(body["data"]["user"].is_null());
    assert_eq!(body["data"]["organization"]["databaseId"], 9001);
    let e = &body["errors"][0];
    assert_eq!(e["type"], "NOT_FOUND");
    assert_eq!(e["path"], json!(["user"]));
    assert_eq!(
        e["message"],
        "Could not resolve to a User with the login of 'acme-org'."
    );
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_fields_and_arguments_are_validation_errors_without_data() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);
    let (status, body) = gql(&sim, &token, "query { viewer { login foo } }", json!({})).await;
    assert_eq!(status, 200);
    assert!(body.get("data").is_none(), "{body}");
    let e = &body["errors"][0];
    assert_eq!(e["message"], "Field 'foo' doesn't exist on type 'User'");
    assert_eq!(
        e["extensions"],
        json!({"code": "undefinedField", "typeName": "User", "fieldName": "foo"})
    );
    assert_eq!(e["path"], json!(["query", "viewer", "foo"]));
    assert_eq!(e["locations"], json!([{"line": 1, "column": 24}]));

    // Trap: Sponsorable has no login.
    let q = "{ viewer { sponsorshipsAsSponsor(first: 1) { nodes { sponsorable { login } } } } }";
    let (_, body) = gql(&sim, &token, q, json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'login' doesn't exist on type 'Sponsorable'"
    );

    // sponsorshipsAsSponsor has no includePrivate.
    let q = "{ viewer { sponsorshipsAsSponsor(first: 1, includePrivate: true) { totalCount } } }";
    let (_, body) = gql(&sim, &token, q, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "argumentNotAccepted"
    );
    assert!(body.get("data").is_none());

    // A required variable left out.
    let (_, body) = gql(&sim, &token, VIEWER_SPONSORSHIP, json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Variable $sponsorable of type String! was provided invalid value"
    );
    assert!(body.get("data").is_none());

    // Selections on a union need fragments.
    let q = "{ viewer { sponsorshipsAsSponsor(first: 1) { nodes { sponsorEntity { login } } } } }";
    let (_, body) = gql(&sim, &token, q, json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Selections can't be made directly on unions (see selections on Sponsor)"
    );

    // Syntax errors.
    let (status, body) = gql(&sim, &token, "{ viewer { login ", json!({})).await;
    assert_eq!(status, 200);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Parse error"));
}

#[tokio::test]
async fn sponsorship_details_need_read_user() {
    let sim = sim().await;
    let token = sim.issue_token("alice", &["user:email"]);
    let (status, body) = gql(
        &sim,
        &token,
        VIEWER_SPONSORSHIP,
        json!({"sponsorable": "acme-org"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["data"].is_null() && body.get("data").is_some(),
        "{body}"
    );
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e["type"] == "INSUFFICIENT_SCOPES"));
    let messages: Vec<&str> = errors
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.iter().any(
        |m| m.contains("The 'createdAt' field requires one of the following scopes: ['read:user']")
    ));
    assert!(messages.iter().any(|m| m.contains("'tier'")));

    // Identity alone needs no scope; `user` implies read:user.
    let bare = sim.issue_token("bob", &[]);
    let (_, body) = gql(&sim, &bare, "{ viewer { login databaseId } }", json!({})).await;
    assert_eq!(body["data"]["viewer"]["login"], "bob");
    let user = sim.issue_token("alice", &["user"]);
    let (_, body) = gql(
        &sim,
        &user,
        VIEWER_SPONSORSHIP,
        json!({"sponsorable": "acme-org"}),
    )
    .await;
    assert!(body.get("errors").is_none());
}

#[tokio::test]
async fn connections_enforce_paging_bounds_and_cursors() {
    let sim = sim().await;
    let token = sim.issue_token("dave", SCOPES);
    let check = |q: &'static str, ty: &'static str| {
        let sim = &sim;
        let token = token.clone();
        async move {
            let (status, body) = gql(sim, &token, q, json!({})).await;
            assert_eq!(status, 200);
            assert!(body["data"].is_null(), "{body}");
            assert_eq!(body["errors"][0]["type"], ty, "{body}");
            body
        }
    };
    let body = check(
        "{ viewer { sponsorshipsAsSponsor { totalCount } } }",
        "MISSING_PAGINATION_BOUNDARIES",
    )
    .await;
    assert_eq!(body["errors"][0]["message"], "You must provide a `first` or `last` value to properly paginate the `sponsorshipsAsSponsor` connection.");
    let body = check(
        "{ viewer { sponsorshipsAsSponsor(first: 101) { totalCount } } }",
        "EXCESSIVE_PAGINATION",
    )
    .await;
    assert_eq!(body["errors"][0]["message"], "Requesting 101 records on the `sponsorshipsAsSponsor` connection exceeds the `first` limit of 100 records.");
    check(
        "{ viewer { sponsorshipsAsSponsor(last: 0) { totalCount } } }",
        "INVALID_PAGINATION",
    )
    .await;
    check(
        "{ viewer { sponsorshipsAsSponsor(first: 5, after: \"bogus\") { totalCount } } }",
        "INVALID_CURSOR_ARGUMENTS",
    )
    .await;

    // `last` with `before` pages backwards; edges carry the cursors.
    let q = "{ viewer { s: sponsorshipsAsSponsor(last: 3) { pageInfo { hasPreviousPage hasNextPage startCursor endCursor } edges { cursor node { sponsorable { ... on User { login } } } } } } }";
    let (_, body) = gql(&sim, &token, q, json!({})).await;
    let conn = &body["data"]["viewer"]["s"];
    let logins: Vec<&str> = conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sponsorable"]["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, vec!["project-128", "project-129", "project-130"]);
    assert_eq!(conn["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(conn["pageInfo"]["hasNextPage"], false);
    assert_eq!(conn["pageInfo"]["endCursor"], conn["edges"][2]["cursor"]);
    let before = conn["pageInfo"]["startCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let q = format!("{{ viewer {{ sponsorshipsAsSponsor(last: 2, before: \"{before}\") {{ nodes {{ sponsorable {{ ... on User {{ login }} }} }} }} }} }}");
    let (_, body) = gql(&sim, &token, &q, json!({})).await;
    let nodes = &body["data"]["viewer"]["sponsorshipsAsSponsor"]["nodes"];
    assert_eq!(nodes[0]["sponsorable"]["login"], "project-126");
    assert_eq!(nodes[1]["sponsorable"]["login"], "project-127");
}

#[tokio::test]
async fn aliases_fragments_typename_and_directives() {
    let sim = sim().await;
    let token = sim.issue_token("acme-admin", SCOPES);
    let q = r#"
        query Two($org: String!, $withMia: Boolean!) {
          me: viewer { ...Who }
          org: repositoryOwner(login: $org) {
            kind: __typename
            ...Who
            ... on Organization { id }
            ... on User { isViewer }
          }
          mia: repositoryOwner(login: "maintainer-mia") @include(if: $withMia) { __typename ...Who }
          skipped: viewer @skip(if: true) { login }
        }
        query Other { viewer { login } }
        fragment Who on RepositoryOwner { login ... on Sponsorable { hasSponsorsListing } }
    "#;
    let resp = client()
        .post(format!("{}/graphql", sim.url()))
        .bearer_auth(&token)
        .json(&json!({"query": q, "operationName": "Two", "variables": {"org": "acme-org", "withMia": true}}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    let d = &body["data"];
    assert_eq!(
        d["me"],
        json!({"login": "acme-admin", "hasSponsorsListing": false})
    );
    assert_eq!(d["org"]["kind"], "Organization");
    assert_eq!(d["org"]["login"], "acme-org");
    assert_eq!(d["org"]["hasSponsorsListing"], true);
    assert!(d["org"]["id"].is_string());
    assert!(
        d["org"].get("isViewer").is_none(),
        "User fragment skipped on an Organization"
    );
    assert_eq!(
        d["mia"],
        json!({"__typename": "User", "login": "maintainer-mia", "hasSponsorsListing": true})
    );
    assert!(d.get("skipped").is_none());

    // Two operations and no operationName.
    let (_, body) = gql(
        &sim,
        &token,
        q,
        json!({"org": "acme-org", "withMia": false}),
    )
    .await;
    assert_eq!(
        body["errors"][0]["message"],
        "An operation name is required"
    );
}

#[tokio::test]
async fn graphql_requires_user_agent_and_a_valid_token() {
    let sim = sim().await;
    let body = json!({"query": "{ viewer { login } }"});
    let url = format!("{}/graphql", sim.url());
    let resp = client()
        .post(&url)
        .bearer_auth("gho_bogus")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["message"], "Bad credentials");
    assert!(v.get("errors").is_none());

    let resp = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let token = sim.issue_token("alice", SCOPES);
    let resp = bare_client()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
