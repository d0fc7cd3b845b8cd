//! Sponsorship kept current between sign-ins: `POST /webhooks/github`,
//! scheduled changes and periodic re-verification.
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
//! Every change goes through [`Store`]'s sponsor-status
//! script, which does the data effects atomically (promotion: the preference
//! set loses its TTL and is mirrored; demotion: the TTL is back, the remote copy
//! is kept). Decisions about one user are serialised by a short per-user lock
//! in the local Redis, so a webhook, the due-change step and re-verification
//! (in this or another process) never interleave on the same user.

use crate::store::StoreError;

mod apply;
mod background;
mod event;
mod keys;
mod reverify;
mod schedule;
mod signature;

pub use crate::clock::now_ms;
pub use apply::{apply_due, handle_event, record_sign_in};
pub use background::background_tasks;
pub use event::{
    decide, parse_event, Action, Change, Decision, Outcome, Parsed, PayloadError, SponsorshipEvent,
    Tier,
};
pub use keys::{
    body_key, delivery_key, lock_key, BODY_PREFIX, BODY_TTL_SECS, CHANGED_AT, DELIVERY_PREFIX,
    DELIVERY_TTL_SECS, DUE_TICK, LOCK_PREFIX, PENDING_CHANGES, PENDING_DUE, REVERIFY_LEASE,
    REVERIFY_RETRY, WEBHOOK_PRECEDENCE,
};
pub use reverify::{reverify_once, ReverifyError, ReverifyReport};
pub use schedule::{migrate_legacy_keys, pending_change, PendingChange};
pub use signature::{sign, verify_signature, SignatureCheck};

/// What can go wrong while changing a sponsor status.
#[derive(Debug, thiserror::Error)]
pub enum SponsorshipError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another task held the user's lock for the whole wait.
    #[error("the sponsorship lock of user {0} stayed busy")]
    Busy(u64),
    #[error("a pending change could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<redis::RedisError> for SponsorshipError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e.into())
    }
}

pub type SponsorshipResult<T> = Result<T, SponsorshipError>;
