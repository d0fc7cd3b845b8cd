//! The replication rules as pure functions: no I/O, unit- and property-tested.
//! `docs/sync.md` explains why they keep the guarantees of docs/contract.md; the Lua in `sync/lua/` only
//! carries out the atomic steps these functions decide.
//!
//! The model in one paragraph: every API change of a sponsor key gets a
//! *stamp* (microseconds of the local Redis clock, strictly increasing per
//! key) and leaves a *pending entry* (`sync:p:{key}`: member or field →
//! entry) until the remote has it. The remote keeps, per member or field,
//! the stamp of the last change it applied (`sync:s:{key}`), and applies an
//! entry only when it is newer (removals win ties): a last-writer-wins map,
//! whose merge is commutative, associative and idempotent. A local loss is
//! recognised where it happens (a new Redis run id, an eviction or expiry
//! event, a missing meta) and only ever leads to a fetch-back, never to a
//! removal on the remote; removals reach the remote only as entries.

use std::collections::{BTreeMap, BTreeSet};

/// Microseconds of the local Redis clock, strictly increasing per key.
pub type Stamp = u64;

/// What a change does to one member (set) or field (hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `SADD` / `HSET`.
    Add,
    /// `SREM` / `HDEL`.
    Remove,
    /// Not a member's change: "compare the whole key with its remote copy"
    /// (another program changed it, or the owner became a sponsor again).
    Diff,
}

/// The owner's sponsorship when the change was acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A sponsor's change (answered `"persistent": true`): always mirrored,
    /// also after a demotion (guarantee 10 of docs/contract.md).
    Sponsor,
    /// A non-sponsor's removal: applied only to a remote copy kept from
    /// when they were a sponsor (their additions are not recorded at all).
    NonSponsor,
    /// Not known at write time (the key's meta was lost): decided when the
    /// entry is pushed, by the owner's sponsorship then.
    Unknown,
}

/// One pending entry, as stored in `sync:p:{key}`: `<stamp>:<op><origin>[:value]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub stamp: Stamp,
    pub op: Op,
    pub origin: Origin,
    /// A hash field's value (`None` for set members and removals).
    pub value: Option<Vec<u8>>,
}

impl Entry {
    pub fn parse(raw: &[u8]) -> Option<Entry> {
        let mut parts = raw.splitn(3, |b| *b == b':');
        let stamp = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let code = parts.next()?;
        let value = parts.next().map(<[u8]>::to_vec);
        let (op, origin) = match code {
            [op, origin] => (*op, *origin),
            _ => return None,
        };
        let op = match op {
            b'a' => Op::Add,
            b'r' => Op::Remove,
            b'd' => Op::Diff,
            _ => return None,
        };
        let origin = match origin {
            b'S' => Origin::Sponsor,
            b'N' => Origin::NonSponsor,
            b'U' => Origin::Unknown,
            _ => return None,
        };
        Some(Entry {
            stamp,
            op,
            origin,
            value,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let op = match self.op {
            Op::Add => 'a',
            Op::Remove => 'r',
            Op::Diff => 'd',
        };
        let origin = match self.origin {
            Origin::Sponsor => 'S',
            Origin::NonSponsor => 'N',
            Origin::Unknown => 'U',
        };
        let mut out = format!("{}:{op}{origin}", self.stamp).into_bytes();
        if let Some(v) = &self.value {
            out.push(b':');
            out.extend_from_slice(v);
        }
        out
    }
}

/// How an entry is applied on the remote (the `code` of `remote_apply.lua`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    Add,
    Remove,
    /// Remove only where a remote copy of the key exists (a former sponsor's).
    RemoveIfKept,
}

impl Push {
    pub fn code(self) -> &'static str {
        match self {
            Push::Add => "a",
            Push::Remove => "r",
            Push::RemoveIfKept => "R",
        }
    }
}

/// What to do with a batch of pending entries of one key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PushPlan {
    /// (field, how, stamp, value) to send to the remote; afterwards the
    /// pushed entries are forgotten locally (where unchanged).
    pub push: Vec<(Vec<u8>, Push, Stamp, Vec<u8>)>,
    /// Entries to forget without sending (a non-sponsor's additions).
    pub forget: Vec<(Vec<u8>, Vec<u8>)>,
    /// Entries to forget after the push, raw (field, entry) as read.
    pub pushed: Vec<(Vec<u8>, Vec<u8>)>,
    /// The key must be compared with its remote copy (a diff marker), as raw (field, entry).
    pub diff: Option<(Vec<u8>, Vec<u8>)>,
    /// Entries whose owner's sponsorship must be known first.
    pub unresolved: bool,
    /// Malformed entries (dropped, counted).
    pub malformed: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Decides the fate of pending entries, given the owner's sponsorship now
/// (`None`: unknown; the sponsors set itself is always a sponsor key).
pub fn plan_push(raw: Vec<(Vec<u8>, Vec<u8>)>, sponsor_now: Option<bool>) -> PushPlan {
    let mut plan = PushPlan::default();
    for (field, bytes) in raw {
        let Some(entry) = Entry::parse(&bytes) else {
            plan.malformed.push((field, bytes));
            continue;
        };
        if entry.op == Op::Diff {
            plan.diff = Some((field, bytes));
            continue;
        }
        let origin = match (entry.origin, sponsor_now) {
            (Origin::Unknown, None) => {
                plan.unresolved = true;
                continue;
            }
            (Origin::Unknown, Some(true)) => Origin::Sponsor,
            (Origin::Unknown, Some(false)) => Origin::NonSponsor,
            (o, _) => o,
        };
        let how = match (entry.op, origin) {
            (Op::Add, Origin::Sponsor) => Push::Add,
            (Op::Add, _) => {
                plan.forget.push((field, bytes));
                continue;
            }
            (Op::Remove, Origin::Sponsor) => Push::Remove,
            (Op::Remove, _) => Push::RemoveIfKept,
            (Op::Diff, _) => unreachable!("handled above"),
        };
        plan.push.push((
            field.clone(),
            how,
            entry.stamp,
            entry.value.unwrap_or_default(),
        ));
        plan.pushed.push((field, bytes));
    }
    plan
}

/// A member's or field's state on the remote: its last applied stamp and
/// whether that change was a removal (`sync:s:{key}`: `+stamp` / `-stamp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteStamp {
    pub stamp: Stamp,
    pub removed: bool,
}

/// The remote's conflict rule (the same as `remote_apply.lua`): newer wins,
/// a removal wins a tie.
pub fn remote_accepts(current: Option<RemoteStamp>, stamp: Stamp, remove: bool) -> bool {
    match current {
        None => true,
        Some(c) => stamp > c.stamp || (stamp == c.stamp && remove && !c.removed),
    }
}

/// An in-memory last-writer-wins map with the remote's rule: the reference
/// the property tests and the simulation compare against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LwwMap {
    pub stamps: BTreeMap<Vec<u8>, (RemoteStamp, Vec<u8>)>,
}

impl LwwMap {
    pub fn apply(&mut self, field: &[u8], stamp: Stamp, remove: bool, value: &[u8]) -> bool {
        let current = self.stamps.get(field).map(|(s, _)| *s);
        if !remote_accepts(current, stamp, remove) {
            return false;
        }
        self.stamps.insert(
            field.to_vec(),
            (
                RemoteStamp {
                    stamp,
                    removed: remove,
                },
                value.to_vec(),
            ),
        );
        true
    }

    /// The members (or fields) present.
    pub fn present(&self) -> BTreeSet<Vec<u8>> {
        self.stamps
            .iter()
            .filter(|(_, (s, _))| !s.removed)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The entries that make the remote copy equal to a *complete* local key
/// (sets: `value` empty; hashes: field → value), all with one stamp taken
/// before the local key was read. Only ever called for a key whose
/// condition is `ok`, so an absence here is a removal, never a loss.
pub fn diff(
    local: &BTreeMap<Vec<u8>, Vec<u8>>,
    remote: &BTreeMap<Vec<u8>, Vec<u8>>,
    stamp: Stamp,
) -> Vec<(Vec<u8>, Push, Stamp, Vec<u8>)> {
    let mut out = Vec::new();
    for (field, value) in local {
        if remote.get(field) != Some(value) {
            out.push((field.clone(), Push::Add, stamp, value.clone()));
        }
    }
    for field in remote.keys() {
        if !local.contains_key(field) {
            out.push((field.clone(), Push::Remove, stamp, Vec::new()));
        }
    }
    out
}

/// Splits entries into chunks of at most `max_items` and about `max_bytes`,
/// so that no command carries more than 1 MiB (guarantee 13 of docs/contract.md).
pub fn chunks<T>(
    items: Vec<T>,
    max_items: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item) + 32;
        if !cur.is_empty() && (cur.len() >= max_items || bytes + n > max_bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += n;
        cur.push(item);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// What the health probe learns of the remote's identity each second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteIdentity {
    /// `run_id` from `INFO server`: a restart changes it.
    pub run_id: String,
    /// The sentinel `sync:alive`: absent after a flush or a restart empty.
    pub sentinel: Option<String>,
}

impl RemoteIdentity {
    /// The identity of a tier from each primary's address, `run_id` and
    /// sentinel. On a cluster the `run_id` is every primary's
    /// (`addr=run_id,…`: a restart or failover of any changes it) and the
    /// sentinel is known only when every primary holds the same one.
    pub fn of_nodes(cluster: bool, mut nodes: Vec<(String, String, Option<String>)>) -> Self {
        if !cluster && nodes.len() == 1 {
            let (_, run_id, sentinel) = nodes.remove(0);
            return Self { run_id, sentinel };
        }
        nodes.sort();
        let run_id = nodes
            .iter()
            .map(|(addr, run_id, _)| format!("{addr}={run_id}"))
            .collect::<Vec<_>>()
            .join(",");
        let sentinels: Option<Vec<String>> = nodes.into_iter().map(|(_, _, s)| s).collect();
        let sentinel = sentinels.and_then(|mut all| {
            all.dedup();
            match all.len() {
                1 => all.pop(),
                // Different sentinels: never equal to a recorded one.
                _ => Some(all.join(",")),
            }
        });
        Self { run_id, sentinel }
    }
}

/// Whether the remote may have lost data since it was last seen whole:
/// it restarted (possibly from an older backup), or its sentinel is gone.
/// `known`: the identity recorded when the remote was last known whole.
pub fn remote_lost(known: Option<&RemoteIdentity>, now: &RemoteIdentity) -> bool {
    match (known, &now.sentinel) {
        (_, None) => true,
        // No record of the remote as it was last seen whole (a fresh or a
        // flushed local Redis): a repair pass is cheap and safe, a missed
        // rewind of the remote is not.
        (None, Some(_)) => true,
        (Some(k), Some(s)) => k.run_id != now.run_id || k.sentinel.as_ref() != Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_cluster_remote_is_whole_only_while_every_primary_is() {
        let node = |addr: &str, run: &str, s: Option<&str>| {
            (addr.to_owned(), run.to_owned(), s.map(str::to_owned))
        };
        let known = RemoteIdentity::of_nodes(
            true,
            vec![node("b:2", "r2", Some("t")), node("a:1", "r1", Some("t"))],
        );
        assert_eq!(known.run_id, "a:1=r1,b:2=r2");
        assert_eq!(known.sentinel.as_deref(), Some("t"));
        let same = RemoteIdentity::of_nodes(
            true,
            vec![node("a:1", "r1", Some("t")), node("b:2", "r2", Some("t"))],
        );
        assert!(!remote_lost(Some(&known), &same));
        // One primary flushed, restarted, or replaced by a failover.
        for now in [
            vec![node("a:1", "r1", None), node("b:2", "r2", Some("t"))],
            vec![node("a:1", "r1", Some("t")), node("b:2", "r9", Some("t"))],
            vec![node("a:1", "r1", Some("t")), node("c:3", "r3", Some("t"))],
            vec![node("a:1", "r1", Some("t")), node("b:2", "r2", Some("u"))],
        ] {
            let now = RemoteIdentity::of_nodes(true, now);
            assert!(remote_lost(Some(&known), &now), "{now:?}");
        }
        let single = RemoteIdentity::of_nodes(false, vec![node("a:1", "r1", Some("t"))]);
        assert_eq!(single.run_id, "r1");
    }

    #[test]
    fn entries_round_trip() {
        for e in [
            Entry {
                stamp: 1_796_131_989_000_123,
                op: Op::Add,
                origin: Origin::Sponsor,
                value: None,
            },
            Entry {
                stamp: 7,
                op: Op::Remove,
                origin: Origin::NonSponsor,
                value: None,
            },
            Entry {
                stamp: 9,
                op: Op::Add,
                origin: Origin::Unknown,
                value: Some(b"a:b".to_vec()),
            },
            Entry {
                stamp: 3,
                op: Op::Diff,
                origin: Origin::Sponsor,
                value: None,
            },
        ] {
            assert_eq!(Entry::parse(&e.encode()), Some(e.clone()));
        }
        for bad in [&b""[..], b"x:aS", b"1:zS", b"1:aX", b"1:a", b"1"] {
            assert_eq!(Entry::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn plan_respects_origin_and_sponsorship() {
        let raw = |f: &str, e: &str| (f.as_bytes().to_vec(), e.as_bytes().to_vec());
        let batch = vec![
            raw("a", "5:aS"),
            raw("b", "6:rS"),
            raw("c", "7:rN"),
            raw("d", "8:aU"),
            raw("e", "9:rU"),
            raw("", "10:dS"),
            raw("f", "junk"),
        ];
        let p = plan_push(batch.clone(), None);
        assert!(p.unresolved);
        assert_eq!(p.push.len(), 3);
        assert!(p.diff.is_some());
        assert_eq!(p.malformed.len(), 1);
        let p = plan_push(batch.clone(), Some(false));
        assert!(!p.unresolved);
        let hows: Vec<_> = p.push.iter().map(|(f, h, _, _)| (f.clone(), *h)).collect();
        assert_eq!(
            hows,
            vec![
                (b"a".to_vec(), Push::Add),
                (b"b".to_vec(), Push::Remove),
                (b"c".to_vec(), Push::RemoveIfKept),
                (b"e".to_vec(), Push::RemoveIfKept),
            ]
        );
        assert_eq!(
            p.forget,
            vec![raw("d", "8:aU")],
            "a non-sponsor's addition is not persisted"
        );
        let p = plan_push(batch, Some(true));
        assert!(p
            .push
            .iter()
            .any(|(f, h, _, _)| f == b"d" && *h == Push::Add));
    }

    #[test]
    fn remote_loss_is_a_restart_or_a_missing_sentinel() {
        let id = |r: &str, s: Option<&str>| RemoteIdentity {
            run_id: r.into(),
            sentinel: s.map(Into::into),
        };
        assert!(
            remote_lost(None, &id("a", None)),
            "a fresh remote is filled"
        );
        assert!(
            remote_lost(None, &id("a", Some("t"))),
            "nothing known: repair once"
        );
        assert!(!remote_lost(Some(&id("a", Some("t"))), &id("a", Some("t"))));
        assert!(
            remote_lost(Some(&id("a", Some("t"))), &id("b", Some("t"))),
            "restarted from a backup"
        );
        assert!(
            remote_lost(Some(&id("a", Some("t"))), &id("a", None)),
            "flushed"
        );
    }

    #[test]
    fn chunks_bound_count_and_bytes() {
        let items: Vec<Vec<u8>> = (0..2500).map(|_| vec![0u8; 256]).collect();
        let c = chunks(items, 1000, 1 << 20, |v| v.len());
        assert_eq!(
            c.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        let big: Vec<Vec<u8>> = (0..10).map(|_| vec![0u8; 300_000]).collect();
        for chunk in chunks(big, 1000, 1 << 20, |v| v.len()) {
            assert!(chunk.iter().map(Vec::len).sum::<usize>() <= 1 << 20);
        }
    }

    fn ops() -> impl Strategy<Value = Vec<(u8, u64, bool)>> {
        prop::collection::vec((0u8..4, 1u64..20, any::<bool>()), 0..40)
    }

    fn replay(ops: &[(u8, u64, bool)]) -> LwwMap {
        let mut m = LwwMap::default();
        for (f, s, rm) in ops {
            m.apply(&[*f], *s, *rm, b"");
        }
        m
    }

    proptest! {
        /// Order and duplicates do not matter: several workers, retries,
        /// a fetch-back racing a push all converge.
        #[test]
        fn lww_merge_is_order_independent(mut ops in ops(), seed in any::<u64>()) {
            let first = replay(&ops);
            let mut rng = seed;
            for i in (1..ops.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ops.swap(i, (rng >> 33) as usize % (i + 1));
            }
            let doubled: Vec<_> = ops.iter().chain(ops.iter()).copied().collect();
            prop_assert_eq!(first.present(), replay(&doubled).present());
        }

        /// The latest change of a member decides; at a tie the removal wins.
        #[test]
        fn lww_latest_wins(ops in ops()) {
            let m = replay(&ops);
            for f in 0u8..4 {
                let latest = ops.iter().filter(|(g, _, _)| *g == f).map(|(_, s, _)| *s).max();
                if let Some(s) = latest {
                    let removed = ops.iter().any(|(g, t, rm)| *g == f && *t == s && *rm);
                    prop_assert_eq!(m.present().contains(&vec![f]), !removed);
                }
            }
        }

        /// A diff pushed onto a remote copy makes it equal to the local key.
        #[test]
        fn diff_makes_remote_equal(local in prop::collection::btree_set(0u8..8, 0..8),
                                   remote in prop::collection::btree_set(0u8..8, 0..8)) {
            let l: BTreeMap<_, _> = local.iter().map(|b| (vec![*b], Vec::new())).collect();
            let r: BTreeMap<_, _> = remote.iter().map(|b| (vec![*b], Vec::new())).collect();
            let mut m = LwwMap::default();
            for f in r.keys() { m.apply(f, 1, false, b""); }
            for (f, how, s, v) in diff(&l, &r, 2) {
                m.apply(&f, s, how != Push::Add, &v);
            }
            prop_assert_eq!(m.present(), l.keys().cloned().collect::<BTreeSet<_>>());
        }
    }
}
