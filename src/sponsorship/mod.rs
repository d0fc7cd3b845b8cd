//! Sponsorship kept current between sign-ins (SPEC §3 `POST /webhooks/github`, §5).
//!
//! Three sources change a user's sponsor status after sign-in:
//!
//! * **GitHub Sponsors webhooks** ([`verify_signature`], [`parse_event`],
//!   [`decide`], [`handle_event`]): `created`, `tier_changed`, `cancelled`,
//!   `pending_cancellation`, `pending_tier_change` (`edited` is a privacy
//!   change only and is ignored).
//! * **Pending changes** ([`apply_due`]): a `pending_*` action whose
//!   `effective_date` lies ahead, and every demotion while
//!   `SPONSOR_GRACE_SECS` runs, wait in a schedule (one entry per user: the
//!   latest decision about a user replaces the earlier one) and are applied
//!   by a background step once due. A promotion removes the user's entry, so a
//!   returning sponsor cancels their scheduled demotion.
//! * **Re-verification** ([`reverify_once`]): with `SPONSORS_TOKEN`, the
//!   sponsorable's complete list of sponsors is read from GitHub and
//!   `sponsors:{SPONSORABLE}` reconciled both ways. A failed or partial read
//!   changes nothing.
//!
//! Every change goes through [`Store`](crate::store::Store)'s sponsor-status
//! script, which does the data effects atomically (promotion: the preference
//! set loses its TTL and is mirrored; demotion: the TTL is back, the remote copy
//! is kept). Decisions about one user are serialised by a short per-user lock
//! in the local Redis, so a webhook, the due-change step and re-verification
//! (in this or another process) never interleave on the same user.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::AppError;
use crate::github::{sponsorship_counts, AccessToken, GithubError};
use crate::state::{App, AppState};

mod apply;
mod background;
mod event;
mod reverify;
mod schedule;
mod signature;

pub use apply::*;
#[allow(unused_imports)]
use apply::*;
pub use background::*;
#[allow(unused_imports)]
use background::*;
pub use event::*;
#[allow(unused_imports)]
use event::*;
pub use reverify::*;
#[allow(unused_imports)]
use reverify::*;
pub use schedule::*;
#[allow(unused_imports)]
use schedule::*;
pub use signature::*;
#[allow(unused_imports)]
use signature::*;

// ---------------------------------------------------------------------------
// Keys. Every key lives under `sync:` (SPEC §4: the service writes no keys
// but the public layout, `session:` and `sync:`). They are named here, beside
// the only code that uses them, rather than in `sync/src/keys.rs`: the sync
// worker neither reads nor mirrors them (they are not sponsor keys).

/// `sync:webhook:delivery:{X-GitHub-Delivery}` (string, unix ms of the apply):
/// a delivery that was applied; written only after the apply succeeded.
pub const DELIVERY_PREFIX: &str = "sync:webhook:delivery:";
/// How long applied delivery ids are remembered (GitHub redelivers manually,
/// only deliveries of the past few days).
pub const DELIVERY_TTL_SECS: u64 = 7 * 24 * 3600;
/// Sorted set: user id → unix ms at which the user's pending change is due.
pub const PENDING_DUE: &str = "sync:sponsorship:due";
/// Hash: user id → JSON [`Change`] of the user's pending change (written
/// together with [`PENDING_DUE`] in one transaction).
pub const PENDING_CHANGES: &str = "sync:sponsorship:pending";
/// Sorted set: user id → unix ms of the last change a webhook (or a due
/// change) applied; re-verification leaves such users alone for
/// [`WEBHOOK_PRECEDENCE`], since its list from GitHub may predate the event.
pub const CHANGED_AT: &str = "sync:sponsorship:changed-at";
/// `sync:sponsorship:lock:{id}` (string with a random token, short TTL).
pub const LOCK_PREFIX: &str = "sync:sponsorship:lock:";
/// Held for one `SPONSORS_REFRESH_SECS` period by the process that runs the
/// re-verification, so that several processes run it once per period.
pub const REVERIFY_LEASE: &str = "sync:sponsorship:reverify-lease";

pub fn delivery_key(delivery: &str) -> String {
    format!("{DELIVERY_PREFIX}{delivery}")
}

pub fn lock_key(user_id: u64) -> String {
    format!("{LOCK_PREFIX}{user_id}")
}

/// A webhook's change wins over a re-verification whose GitHub list was read
/// less than this long before the change (the list may predate the event).
pub const WEBHOOK_PRECEDENCE: Duration = Duration::from_secs(60);
/// How often the background step looks for due changes.
pub const DUE_TICK: Duration = Duration::from_millis(500);
/// After a failed re-verification, the next attempt comes this soon (or after
/// `SPONSORS_REFRESH_SECS` when that is shorter).
pub const REVERIFY_RETRY: Duration = Duration::from_secs(60);
const LOCK_TTL_MS: u64 = 15_000;
const LOCK_WAIT: Duration = Duration::from_secs(5);
const DUE_BATCH: isize = 100;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_test_vector() {
        let secret = b"It's a Secret to Everybody";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), expected);
        let check = |h: &str| verify_signature(secret, b"Hello, World!", Some(h.as_bytes()));
        assert_eq!(check(expected), SignatureCheck::Valid);
        assert_eq!(
            check(&expected.replace("e17", "e18")),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(&expected[..expected.len() - 2]),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(expected.trim_start_matches("sha256=")),
            SignatureCheck::Invalid
        );
        assert_eq!(check("sha256=zz"), SignatureCheck::Invalid);
        assert_eq!(
            verify_signature(secret, b"Hello, World!", None),
            SignatureCheck::Missing
        );
        assert_eq!(
            verify_signature(secret, b"Hello, World?", Some(expected.as_bytes())),
            SignatureCheck::Invalid
        );
    }

    fn payload(
        action: &str,
        sponsorable: serde_json::Value,
        sponsor: serde_json::Value,
        tier: serde_json::Value,
    ) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "action": action,
            "sponsorship": {"sponsorable": sponsorable, "sponsor": sponsor, "tier": tier},
            "effective_date": "2019-12-30T00:00:00+00:00",
        }))
        .unwrap()
    }

    fn user(login: &str, id: u64) -> serde_json::Value {
        serde_json::json!({"login": login, "id": id, "type": "User"})
    }

    fn tier(cents: u64, one_time: bool) -> serde_json::Value {
        serde_json::json!({"monthly_price_in_cents": cents, "is_one_time": one_time})
    }

    fn event(action: &str, cents: u64, one_time: bool) -> SponsorshipEvent {
        let body = payload(
            action,
            user("ACME-org", 9001),
            user("alice", 1001),
            tier(cents, one_time),
        );
        match parse_event(&body, "acme-org").unwrap() {
            Parsed::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parsing_filters_what_is_not_ours() {
        let ours = user("acme-org", 9001);
        let alice = user("alice", 1001);
        let t = tier(1000, false);
        let cases = [
            payload("created", user("octocat", 5), alice.clone(), t.clone()),
            payload("created", serde_json::Value::Null, alice.clone(), t.clone()),
            payload("created", ours.clone(), serde_json::Value::Null, t.clone()),
            payload(
                "created",
                ours.clone(),
                serde_json::json!({"login": "org", "id": 3, "type": "Organization"}),
                t.clone(),
            ),
            payload("renamed", ours.clone(), alice.clone(), t.clone()),
        ];
        for body in cases {
            assert!(matches!(
                parse_event(&body, "acme-org").unwrap(),
                Parsed::Ignored(_)
            ));
        }
        assert!(parse_event(b"[1]", "acme-org").is_err());
        assert!(parse_event(
            b"{\"action\":\"created\",\"sponsorship\":{\"sponsor\":{\"id\":\"x\"}}}",
            "acme-org"
        )
        .is_err());
        let e = event("pending_cancellation", 1000, false);
        assert_eq!(e.effective_at_ms, Some(1_577_664_000_000));
        assert_eq!(e.sponsor_id, 1001);
        assert_eq!(parse_date("2019-12-30"), Some(1_577_664_000_000));
    }

    #[test]
    fn decisions_apply_the_minimum() {
        let set = |sponsor, tier: Option<u64>| Decision::Set {
            sponsor,
            tier_monthly_usd: tier,
            effective_at_ms: None,
        };
        assert_eq!(
            decide(&event("created", 1000, false), 5),
            set(true, Some(10))
        );
        assert_eq!(decide(&event("created", 100, false), 5), set(false, None));
        assert_eq!(decide(&event("created", 5000, true), 5), set(false, None));
        assert_eq!(decide(&event("created", 5000, true), 0), set(true, None));
        assert_eq!(
            decide(&event("tier_changed", 499, false), 5),
            set(false, None)
        );
        assert_eq!(
            decide(&event("tier_changed", 500, false), 5),
            set(true, Some(5))
        );
        assert_eq!(
            decide(&event("cancelled", 1000, false), 0),
            set(false, None)
        );
        assert!(matches!(
            decide(&event("edited", 1000, false), 0),
            Decision::Ignore(_)
        ));
        assert!(matches!(
            decide(&event("pending_tier_change", 100, false), 5),
            Decision::Set {
                sponsor: false,
                effective_at_ms: Some(_),
                ..
            }
        ));
    }
}
