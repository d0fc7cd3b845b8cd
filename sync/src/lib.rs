//! sponsorgate's sync worker: mirrors sponsors' keys from the local Redis to
//! the remote one, fetches them back on a miss, and never loses an
//! acknowledged change. See DESIGN.md ("Sync") for the data flow.

pub mod journal;
pub mod keys;

pub use journal::{AddOutcome, Gate, Quotas, StatusUpdate, WritePath};
pub use keys::{Keys, SponsorKey};
