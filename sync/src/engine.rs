//! The replication algorithms, written once against [`Tiers`]: pushing a
//! key's pending entries, fetching a lost key back, comparing a complete key
//! with its remote copy, and the full reconciliation. The worker, the API
//! door and the simulation all run these same functions.
//!
//! Why each is safe with anything happening between two of its steps is in
//! `docs/sync.md`; in short: every remote write is a stamped entry applied
//! last-writer-wins, local entries are forgotten only where unchanged, and a
//! fetch-back replaces the local key with (remote copy + the writes made
//! during the fetch) only after every earlier entry reached the remote.

use std::collections::BTreeMap;

use crate::core::{chunks, diff, plan_push, Entry, Op, Origin, Push, Stamp};
use crate::error::SyncError;
use crate::keys::SponsorKey;
use crate::tiers::{Condition, DiffStart, Items, Tiers, SCAN_COUNT};

/// Largest payload of one command (guarantee 13 of docs/contract.md allows 1 MiB).
pub const MAX_COMMAND_BYTES: usize = 512 * 1024;
/// Members staged per step of a fetch-back.
const STAGE_CHUNK: usize = 250;

/// What [`hydrate`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hydration {
    /// Complete locally (it was, or it was fetched back now).
    Complete,
    /// A non-sponsor's key: local data is all there is.
    NotSponsor,
    /// Another fetch-back of the key is running (maybe in another process).
    Busy,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    pub forgotten: usize,
    pub malformed: usize,
    /// A comparison with the remote copy ran (another program's change).
    pub diffed: bool,
    /// The key turned out lost: it must be fetched back (the caller does).
    pub needs_fetch: bool,
    /// The stamps of the entries pushed (for the lag metric).
    pub stamps: Vec<Stamp>,
}

impl PushReport {
    /// Entries pushed to the remote.
    pub fn pushed(&self) -> usize {
        self.stamps.len()
    }
}

fn entry_size(e: &(Vec<u8>, Push, Stamp, Vec<u8>)) -> usize {
    e.0.len() + e.3.len()
}

async fn apply_chunked<T: Tiers>(
    t: &T,
    key: &SponsorKey,
    entries: Vec<(Vec<u8>, Push, Stamp, Vec<u8>)>,
) -> Result<usize, SyncError> {
    let n = entries.len();
    for chunk in chunks(entries, SCAN_COUNT / 2, MAX_COMMAND_BYTES, entry_size) {
        t.remote_apply(key, &chunk).await?;
    }
    Ok(n)
}

/// The owner's sponsorship, with the sponsors set fetched back first when it
/// was lost (the sponsors set's own keys are always a sponsor's).
pub async fn sponsorship<T: Tiers>(
    t: &T,
    key: &SponsorKey,
    token: &str,
) -> Result<bool, SyncError> {
    let Some(uid) = key.user_id() else {
        return Ok(true);
    };
    for _ in 0..50 {
        match Box::pin(hydrate(t, &SponsorKey::Sponsors, token)).await? {
            Hydration::Busy => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            _ => return Ok(t.sponsor_check(uid).await?.1),
        }
    }
    Err(SyncError::protocol(
        "sponsorship",
        "the sponsors set stayed busy",
    ))
}

/// Sends a key's pending entries to the remote and forgets them locally.
/// `sponsor`: the owner's sponsorship when already known.
pub async fn push_key<T: Tiers>(
    t: &T,
    key: &SponsorKey,
    token: &str,
) -> Result<PushReport, SyncError> {
    let mut report = PushReport::default();
    // The owner's sponsorship matters only for entries of unknown origin:
    // looked up when the first one turns up.
    let mut sponsor = match key {
        SponsorKey::Sponsors => Some(true),
        _ => None,
    };
    let mut marker = None;
    let mut cursor = 0;
    loop {
        let (next, raw) = t.scan_pending(key, cursor).await?;
        let mut plan = plan_push(raw.clone(), sponsor);
        if plan.unresolved {
            let now = match t.read(key, 0, None).await?.sponsor {
                Some(known) => known,
                None => {
                    let now = sponsorship(t, key, token).await?;
                    t.set_status(key, now, !now).await?;
                    now
                }
            };
            sponsor = Some(now);
            plan = plan_push(raw, sponsor);
        }
        report
            .stamps
            .extend(plan.push.iter().map(|(_, _, s, _)| *s));
        apply_chunked(t, key, plan.push).await?;
        report.forgotten += plan.forget.len();
        report.malformed += plan.malformed.len();
        for list in [plan.pushed, plan.forget, plan.malformed] {
            for chunk in chunks(list, SCAN_COUNT / 2, MAX_COMMAND_BYTES, |(f, e)| {
                f.len() + e.len()
            }) {
                t.forget(key, &chunk).await?;
            }
        }
        if plan.diff.is_some() {
            marker = plan.diff;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if let Some(marker) = marker {
        match diff_key(t, key).await? {
            DiffOutcome::Diffed => {
                report.diffed = true;
                // What the comparison recorded goes out now.
                let again = Box::pin(push_key(t, key, token)).await?;
                report.stamps.extend(again.stamps);
            }
            DiffOutcome::NotComplete => {
                report.needs_fetch = true;
            }
            DiffOutcome::NotSponsor => t.forget(key, &[marker]).await?,
        }
    }
    // The activity of the changes just pushed follows them (a sponsor's
    // only; idempotent). A failure here is not retried until the next push
    // of the key: a known limit (docs/sync.md).
    if let (SponsorKey::Mnodes(uid), false) = (key, report.stamps.is_empty()) {
        t.push_activity(*uid).await?;
    }
    Ok(report)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffOutcome {
    Diffed,
    NotComplete,
    NotSponsor,
}

async fn scan_all<T: Tiers>(
    t: &T,
    key: &SponsorKey,
    remote: bool,
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, SyncError> {
    let mut out = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let (next, items): (u64, Items) = if remote {
            t.remote_scan(key, cursor).await?
        } else {
            t.scan_local(key, cursor).await?
        };
        out.extend(items);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

/// Makes the remote copy equal to the complete local key (another program
/// changed it, or a reconciliation found a difference). Never for a lost key.
pub async fn diff_key<T: Tiers>(t: &T, key: &SponsorKey) -> Result<DiffOutcome, SyncError> {
    let (stamp, marker, generation) = match t.begin_diff(key).await? {
        DiffStart::NotComplete => return Ok(DiffOutcome::NotComplete),
        DiffStart::NotSponsor => return Ok(DiffOutcome::NotSponsor),
        DiffStart::Ready {
            stamp,
            marker,
            generation,
        } => (stamp, marker, generation),
    };
    let local = scan_all(t, key, false).await?;
    if !t.end_diff(key, &generation).await? {
        // Lost while it was read: the scan may be partial, never mirror it.
        return Ok(DiffOutcome::NotComplete);
    }
    // What the remote will hold once the pending changes are pushed: the
    // comparison corrects that, not the remote as it is now.
    let mut remote = scan_all(t, key, true).await?;
    let mut cursor = 0;
    loop {
        let (next, raw) = t.scan_pending(key, cursor).await?;
        for (field, bytes) in raw {
            match Entry::parse(&bytes) {
                Some(e) if e.op == Op::Add => {
                    remote.insert(field, e.value.unwrap_or_default());
                }
                Some(e) if e.op == Op::Remove => {
                    remote.remove(&field);
                }
                _ => {}
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let hash = matches!(key, SponsorKey::UserDetails(_));
    let entries: Vec<(Vec<u8>, Vec<u8>)> = diff(&local, &remote, stamp)
        .into_iter()
        .map(|(field, how, stamp, value)| {
            let entry = Entry {
                stamp,
                op: if how == Push::Add {
                    Op::Add
                } else {
                    Op::Remove
                },
                origin: Origin::Sponsor,
                value: (hash && how == Push::Add).then_some(value),
            };
            (field, entry.encode())
        })
        .collect();
    // Recorded as pending, pushed like any change: a fetch-back racing this
    // comparison pushes them before it reads the remote copy.
    for chunk in chunks(entries, SCAN_COUNT / 2, MAX_COMMAND_BYTES, |(f, e)| {
        f.len() + e.len()
    }) {
        if !t.record(key, &generation, &chunk).await? {
            return Ok(DiffOutcome::NotComplete);
        }
    }
    if let Some(m) = marker {
        t.forget(key, &[(Vec::new(), m)]).await?;
    }
    Ok(DiffOutcome::Diffed)
}

/// Makes a key complete locally: a sponsor's lost key is fetched back (its
/// pending entries pushed first, then the remote copy staged and swapped in
/// with the writes made meanwhile); a non-sponsor's is settled as it stands.
pub async fn hydrate<T: Tiers>(
    t: &T,
    key: &SponsorKey,
    token: &str,
) -> Result<Hydration, SyncError> {
    let state = t.read(key, 0, None).await?;
    if state.condition == Condition::Complete {
        return Ok(if state.sponsor == Some(false) && key.user_id().is_some() {
            Hydration::NotSponsor
        } else {
            Hydration::Complete
        });
    }
    let sponsor = match (key, state.sponsor) {
        (SponsorKey::Sponsors, _) => true,
        (_, Some(s)) => s,
        (_, None) => {
            let s = sponsorship(t, key, token).await?;
            t.set_status(key, s, !s).await?;
            s
        }
    };
    if !sponsor {
        t.set_status(key, false, true).await?;
        return Ok(Hydration::NotSponsor);
    }
    fetch_back(t, key, token).await
}

/// The fetch-back proper (the owner is a sponsor).
pub async fn fetch_back<T: Tiers>(
    t: &T,
    key: &SponsorKey,
    token: &str,
) -> Result<Hydration, SyncError> {
    let Some(union) = t.begin_fetch(key, token).await? else {
        return Ok(Hydration::Busy);
    };
    if let Some(stamp) = union {
        // A promotion: what the complete local key holds persists.
        let local = scan_all(t, key, false).await?;
        let adds = local
            .into_iter()
            .map(|(f, v)| (f, Push::Add, stamp, v))
            .collect();
        apply_chunked(t, key, adds).await?;
        if !t.stage(key, token, &[]).await? {
            return Ok(Hydration::Busy);
        }
    }
    // Every entry written before the lease is on the remote before its copy
    // is read; entries written after it are replayed by the swap.
    let mut cursor = 0;
    loop {
        let (next, raw) = t.scan_pending(key, cursor).await?;
        let plan = plan_push(raw, Some(true));
        apply_chunked(t, key, plan.push).await?;
        t.forget(key, &plan.pushed).await?;
        t.forget(key, &plan.malformed).await?;
        // A diff marker is moot: the key is about to become the remote copy.
        if let Some(m) = plan.diff {
            t.forget(key, &[m]).await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if !t.stage(key, token, &[]).await? {
        return Ok(Hydration::Busy);
    }
    let remote_stamp = t.remote_stamp(key).await?;
    let mut cursor = 0;
    loop {
        let (next, items) = t.remote_scan(key, cursor).await?;
        // Small steps: each is a script on the shared local Redis (≤ 10 ms).
        for chunk in items.chunks(STAGE_CHUNK) {
            if !t.stage(key, token, chunk).await? {
                return Ok(Hydration::Busy);
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if t.finish_fetch(key, token, remote_stamp).await? {
        // The local Redis lost the preferences, so their activity too.
        if let SponsorKey::Mnodes(uid) = key {
            t.restore_activity(*uid).await?;
        }
        Ok(Hydration::Complete)
    } else {
        Ok(Hydration::Busy)
    }
}

/// Compare-and-repair of one key: its pending entries pushed, then a
/// complete key compared with its remote copy, a lost one fetched back.
pub async fn reconcile_key<T: Tiers>(
    t: &T,
    key: &SponsorKey,
    token: &str,
) -> Result<Reconciled, SyncError> {
    push_key(t, key, token).await?;
    let state = t.read(key, 0, None).await?;
    if state.condition == Condition::Lost {
        return Ok(match hydrate(t, key, token).await? {
            Hydration::Complete => Reconciled::FetchedBack,
            _ => Reconciled::Skipped,
        });
    }
    Ok(match diff_key(t, key).await? {
        DiffOutcome::Diffed => {
            push_key(t, key, token).await?;
            Reconciled::Compared
        }
        _ => Reconciled::Skipped,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconciled {
    Compared,
    FetchedBack,
    Skipped,
}
