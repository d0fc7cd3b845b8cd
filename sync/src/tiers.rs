//! The atomic steps of replication, as one trait: the engine (`engine.rs`)
//! is written against it, the worker and the API run it on the two Redis
//! servers ([`RedisTiers`]), and the simulation runs the same engine on the
//! same Redis servers with its own scheduling and faults between any two
//! steps (`sync/tests/worker/sim.rs`).
//!
//! Every local step is one Lua script from `sync/lua/` (or one plain
//! command) touching the keys of one hash slot only: the public key and its
//! `sync:*:{key}` companions, which hash like the key itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redis::{Script, Value};

use crate::conn::Conn;
use crate::core::{Push, Stamp};
use crate::error::SyncError;
use crate::keys::{Keys, SponsorKey};

/// A change the API makes to one sponsor key.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    pub key: &'a SponsorKey,
    /// `true`: add members / set fields; `false`: remove members.
    pub add: bool,
    /// Set members (one), or hash field/value pairs.
    pub items: &'a [(&'a str, &'a str)],
    /// The owner's sponsorship to record with the change (a status change),
    /// instead of the one in the key's meta.
    pub status: Option<bool>,
    /// A change of `user:{id}:mnodes` made through the API: how it came
    /// (`session`, `token`). The same step appends it to `user:{id}:activity`.
    pub via: Option<&'a str>,
    /// Count the request against this rate limit first, in the same step (one
    /// round trip less than a separate check); refused: nothing changes.
    pub limit: Option<RateLimit<'a>>,
}

/// A rate limit a write counts against ([`GCRA_SCRIPT`]'s arguments). The
/// counter must be in the key's slot on a Redis Cluster: name it with the
/// key as a hash tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit<'a> {
    pub key: &'a str,
    pub window_us: u64,
    pub quota: u64,
}

/// What a rate-limit count decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitCount {
    pub allowed: bool,
    /// Requests left in the window after this one.
    pub remaining: u64,
    /// µs until the whole quota is available again.
    pub reset_us: u64,
    /// µs until a request would be allowed (0 when allowed).
    pub retry_us: u64,
}

/// How a key stands locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Holds everything acknowledged: reads are complete.
    Complete,
    /// Lost (flush, eviction, expiry, restart, rewind): fetch back first.
    Lost,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteReply {
    Done {
        changed: bool,
        /// The owner's sponsorship as the key's meta knows it (`None`: lost).
        sponsor: Option<bool>,
        condition: Condition,
        /// Members after the change (sets).
        count: u64,
        /// The sponsors set was lost: the key's own record of the owner's
        /// sponsorship was used (fetch the sponsors set back).
        sponsors_lost: bool,
        /// A pending entry was written: the key has something to push.
        recorded: bool,
        /// The change's stamp (when one was issued).
        stamp: Option<Stamp>,
        /// The count of [`Change::limit`], when one was given.
        rate: Option<LimitCount>,
    },
    QuotaExceeded {
        limit: u64,
        rate: Option<LimitCount>,
    },
    /// Refused by [`Change::limit`]: nothing changed.
    RateLimited(LimitCount),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadReply {
    pub condition: Condition,
    pub sponsor: Option<bool>,
    /// As in [`WriteReply::Done`].
    pub sponsors_lost: bool,
    pub len: u64,
    /// Members (empty values) or field/value pairs; `None` when the key is
    /// larger than the limit (read it with [`Tiers::scan_local`]).
    pub items: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiffStart {
    /// Not complete locally: it must be fetched back instead.
    NotComplete,
    /// The owner is not a sponsor: nothing to compare.
    NotSponsor,
    Ready {
        stamp: Stamp,
        marker: Option<Vec<u8>>,
        /// The key's loss generation, for `end_diff` and `record`.
        generation: String,
    },
}

/// Items of a scan: members with empty values, or field/value pairs.
pub type Items = Vec<(Vec<u8>, Vec<u8>)>;

/// The steps. Each is atomic on its server; between two of them anything may
/// happen (another step, a crash, a flush, an outage).
#[expect(
    async_fn_in_trait,
    reason = "used generically inside the crate and its tests only"
)]
pub trait Tiers {
    async fn write(&self, change: &Change<'_>) -> Result<WriteReply, SyncError>;
    /// `status`: the owner's sponsorship as the sponsors set says now, to
    /// record on the key first (`None`: keep the key's own record).
    async fn read(
        &self,
        key: &SponsorKey,
        limit: usize,
        status: Option<bool>,
    ) -> Result<ReadReply, SyncError>;
    async fn scan_local(&self, key: &SponsorKey, cursor: u64) -> Result<(u64, Items), SyncError>;
    /// Whether the user is in the sponsors set, and that set's condition.
    async fn sponsor_check(&self, user_id: u64) -> Result<(Condition, bool), SyncError>;
    async fn scan_pending(&self, key: &SponsorKey, cursor: u64) -> Result<(u64, Items), SyncError>;
    /// Gives an entry written with an unknown origin the one now known.
    async fn confirm(
        &self,
        key: &SponsorKey,
        field: &[u8],
        written: &[u8],
        confirmed: &[u8],
    ) -> Result<(), SyncError>;
    /// Forgets pending entries where they are still the ones given.
    async fn forget(
        &self,
        key: &SponsorKey,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), SyncError>;
    /// Records the owner's sponsorship on the key; returns the one before.
    async fn set_status(
        &self,
        key: &SponsorKey,
        sponsor: bool,
        settle: bool,
    ) -> Result<Option<bool>, SyncError>;
    /// `None`: another fetch holds the lease; `Some(Some(stamp))`: push the
    /// local members as additions with `stamp` first (a promotion).
    async fn begin_fetch(
        &self,
        key: &SponsorKey,
        token: &str,
    ) -> Result<Option<Option<Stamp>>, SyncError>;
    /// Stages a chunk of the remote copy under the lease (renewing it);
    /// `false` when the lease is gone.
    async fn stage(
        &self,
        key: &SponsorKey,
        token: &str,
        items: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, SyncError>;
    async fn finish_fetch(
        &self,
        key: &SponsorKey,
        token: &str,
        remote_stamp: Stamp,
    ) -> Result<bool, SyncError>;
    async fn begin_diff(&self, key: &SponsorKey) -> Result<DiffStart, SyncError>;
    /// Whether the key stayed complete since `begin_diff` gave `generation`.
    async fn end_diff(&self, key: &SponsorKey, generation: &str) -> Result<bool, SyncError>;
    /// Records a comparison's entries as pending (while the key stays
    /// complete since `begin_diff` gave `generation`); `false` when it did not.
    async fn record(
        &self,
        key: &SponsorKey,
        generation: &str,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, SyncError>;
    async fn remote_apply(
        &self,
        key: &SponsorKey,
        entries: &[(Vec<u8>, Push, Stamp, Vec<u8>)],
    ) -> Result<Stamp, SyncError>;
    async fn remote_scan(&self, key: &SponsorKey, cursor: u64) -> Result<(u64, Items), SyncError>;
    async fn remote_stamp(&self, key: &SponsorKey) -> Result<Stamp, SyncError>;
    /// A sponsor's `user:{id}:activity`: copies the entries the remote lacks.
    async fn push_activity(&self, user_id: u64) -> Result<(), SyncError>;
    /// Gives `user:{id}:activity` the lifetime of the preferences: none for
    /// a sponsor, their TTL for anyone else.
    async fn activity_lifetime(&self, user_id: u64, sponsor: bool) -> Result<(), SyncError>;
    /// Merges the remote copy of a sponsor's activity into the local stream
    /// (after a fetch-back of their preferences: the local lost both).
    async fn restore_activity(&self, user_id: u64) -> Result<(), SyncError>;
}

/// Stream entries as the activity scripts take them: (id, kind, node id, via)...
fn add_activity_args(
    inv: &mut redis::ScriptInvocation<'_>,
    entries: &[(String, Vec<(String, String)>)],
) {
    for (id, fields) in entries {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        inv.arg(id)
            .arg(field("kind"))
            .arg(field("id"))
            .arg(field("via"));
    }
}

fn lua(body: &str) -> Script {
    Script::new(&format!(
        "{}\n{}\n{body}",
        include_str!("../lua/gcra.lua"),
        include_str!("../lua/prelude.lua")
    ))
}

/// The rate limiter on its own (KEYS[1] the counter; ARGV window µs, quota):
/// the same GCRA that [`Change::limit`] runs inside the write step.
pub const GCRA_SCRIPT: &str = concat!(
    include_str!("../lua/gcra.lua"),
    "\nreturn gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"
);

pub(crate) struct Scripts {
    write: Script,
    read: Script,
    set_status: Script,
    gc: Script,
    confirm: Script,
    begin_fetch: Script,
    finish_fetch: Script,
    begin_diff: Script,
    end_diff: Script,
    record: Script,
    pub(crate) note: Script,
    stage: Script,
    sponsor_check: Script,
    remote_apply: Script,
    activity_append: Script,
    activity_restore: Script,
    activity_note: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            write: lua(include_str!("../lua/write.lua")),
            activity_note: Script::new(include_str!("../lua/activity_note.lua")),
            read: lua(include_str!("../lua/read.lua")),
            set_status: lua(include_str!("../lua/set_status.lua")),
            gc: Script::new(include_str!("../lua/gc.lua")),
            confirm: Script::new(include_str!("../lua/confirm.lua")),
            begin_fetch: lua(include_str!("../lua/begin_fetch.lua")),
            finish_fetch: lua(include_str!("../lua/finish_fetch.lua")),
            begin_diff: lua(include_str!("../lua/begin_diff.lua")),
            end_diff: lua(include_str!("../lua/end_diff.lua")),
            record: lua(include_str!("../lua/record.lua")),
            note: lua(include_str!("../lua/note.lua")),
            stage: lua(include_str!("../lua/stage.lua")),
            sponsor_check: lua(include_str!("../lua/sponsor_check.lua")),
            remote_apply: Script::new(include_str!("../lua/remote_apply.lua")),
            activity_append: Script::new(include_str!("../lua/activity_append.lua")),
            activity_restore: Script::new(include_str!("../lua/activity_restore.lua")),
        }
    }
}

/// Settings the steps run with.
#[derive(Clone, Copy, Debug)]
pub struct WriteSettings {
    pub quota_sponsor: u64,
    pub quota_free: u64,
    /// Most API token records per user (`auth:tokens:{id}`).
    pub quota_tokens: u64,
    /// Most entries kept in `user:{id}:activity`.
    pub activity_max: u64,
    /// TTL of a non-sponsor's `user:{id}:mnodes`.
    pub ttl_secs: u64,
}

/// Fetch-back lease: another process may take over a fetch after this long.
pub(crate) const FETCH_LEASE_MS: u64 = 10_000;
/// Members per SSCAN/HSCAN and per staged or pushed chunk.
pub(crate) const SCAN_COUNT: usize = 500;

/// The steps on real Redis servers.
pub struct RedisTiers {
    pub(crate) keys: Keys,
    pub(crate) local: Arc<Conn>,
    /// `None`: sync off (no remote configured): nothing is pending, every key complete.
    pub(crate) remote: Option<Arc<Conn>>,
    pub(crate) remote_addr: String,
    pub(crate) scripts: Scripts,
    pub(crate) settings: WriteSettings,
    /// The local `maxmemory-policy` can evict keys without a TTL (`allkeys-*`),
    /// or it is unknown (CONFIG refused): an absent key that should exist is
    /// then a loss, else another program's deletion.
    pub(crate) evicting: Arc<AtomicBool>,
    /// Fetch-back lease ([`FETCH_LEASE_MS`]; shorter in the simulation).
    pub(crate) fetch_lease_ms: u64,
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

fn kind(key: &SponsorKey) -> &'static str {
    match key {
        SponsorKey::UserDetails(_) => "hash",
        _ => "set",
    }
}

fn owner(key: &SponsorKey) -> &'static str {
    match key {
        SponsorKey::Sponsors => "s",
        _ => "u",
    }
}

fn text(v: &Value, place: &'static str) -> Result<String, SyncError> {
    redis::from_redis_value_ref::<String>(v).map_err(|e| SyncError::protocol(place, e.to_string()))
}

fn int(v: &Value, place: &'static str) -> Result<i64, SyncError> {
    redis::from_redis_value_ref::<i64>(v).map_err(|e| SyncError::protocol(place, e.to_string()))
}

fn sponsor_of(s: &str) -> Option<bool> {
    match s {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

fn condition(s: &str) -> Condition {
    if s == "ok" {
        Condition::Complete
    } else {
        Condition::Lost
    }
}

fn pairs(items: Vec<Vec<u8>>, hash: bool) -> Items {
    if hash {
        let mut it = items.into_iter();
        std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
    } else {
        items.into_iter().map(|m| (m, Vec::new())).collect()
    }
}

impl RedisTiers {
    pub(crate) fn new(
        keys: Keys,
        local: Arc<Conn>,
        remote: Option<(Arc<Conn>, String)>,
        settings: WriteSettings,
        evicting: Arc<AtomicBool>,
    ) -> Self {
        let (remote, remote_addr) = match remote {
            Some((c, a)) => (Some(c), a),
            None => (None, String::new()),
        };
        Self {
            keys,
            local,
            remote,
            remote_addr,
            scripts: Scripts::new(),
            settings,
            evicting,
            fetch_lease_ms: FETCH_LEASE_MS,
        }
    }

    /// The steps on their own, without a worker (the simulation drives the
    /// engine itself). `evicting`: see [`RedisTiers`]'s field of that name.
    pub fn connect(
        sponsorable: &str,
        local_url: &str,
        remote_url: Option<&str>,
        settings: WriteSettings,
        evicting: bool,
        fetch_lease_ms: u64,
    ) -> Result<Self, SyncError> {
        let open = |url: &str| {
            crate::target::RedisTarget::parse(url)
                .and_then(|t| {
                    Conn::open(t, std::time::Duration::from_secs(5))
                        .map_err(|e| e.category().to_string())
                })
                .map(Arc::new)
                .map_err(SyncError::Config)
        };
        let local = open(local_url)?;
        let remote = match remote_url {
            Some(url) => Some((open(url)?, crate::config::redacted_addr(url))),
            None => None,
        };
        let mut tiers = Self::new(
            Keys::new(sponsorable),
            local,
            remote,
            settings,
            Arc::new(AtomicBool::new(evicting)),
        );
        tiers.fetch_lease_ms = fetch_lease_ms;
        Ok(tiers)
    }

    fn sync_on(&self) -> bool {
        self.remote.is_some()
    }

    fn evict(&self) -> &'static str {
        flag(self.evicting.load(Ordering::Relaxed))
    }

    /// The most members a key may hold, for a sponsor or not.
    fn quota(&self, key: &SponsorKey, sponsor: bool) -> u64 {
        match (key, sponsor) {
            (SponsorKey::Tokens(_), _) => self.settings.quota_tokens,
            (_, true) => self.settings.quota_sponsor,
            (_, false) => self.settings.quota_free,
        }
    }

    fn ttl(&self, key: &SponsorKey) -> u64 {
        match key {
            SponsorKey::Mnodes(_) => self.settings.ttl_secs.max(1),
            _ => 0,
        }
    }

    /// Whether every key is on one server: then a user key's step reads the
    /// sponsors set itself (one round trip instead of two) and a change's
    /// activity entry is appended in the change's own step. On a Redis
    /// Cluster the door passes the answer of its own `sponsor_check` step
    /// instead, the activity entry follows in a step of its own, and every
    /// step stays in one slot.
    pub fn colocated(&self) -> bool {
        !self.local.is_cluster()
    }

    fn colocated_sponsors(&self, inv: &mut redis::ScriptInvocation<'_>) {
        if !self.colocated() {
            return;
        }
        let sponsors = self.keys.sponsors();
        inv.key(sponsors)
            .key(self.keys.meta(sponsors))
            .key(self.keys.pending(sponsors));
    }

    /// A step of `script` on `key` with the key, its meta and its pending
    /// hash as its first KEYS (most steps).
    fn step_on<'a>(&self, script: &'a Script, key: &SponsorKey) -> redis::ScriptInvocation<'a> {
        let name = self.keys.name(key);
        let mut inv = script.prepare_invoke();
        inv.key(&name)
            .key(self.keys.meta(&name))
            .key(self.keys.pending(&name));
        inv
    }

    /// Runs a local step that has the prelude (it gets the server's run id).
    async fn run_local<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, SyncError> {
        self.local.invoke_epoch(inv).await.map_err(SyncError::Local)
    }

    fn remote(&self) -> Result<&Conn, SyncError> {
        self.remote
            .as_deref()
            .ok_or_else(|| SyncError::Config("no remote redis configured".into()))
    }

    fn remote_err(&self, source: redis::RedisError) -> SyncError {
        SyncError::Remote {
            addr: self.remote_addr.clone(),
            source,
        }
    }

    async fn scan(
        conn: &Conn,
        key: &str,
        hash: bool,
        cursor: u64,
    ) -> redis::RedisResult<(u64, Items)> {
        let mut cmd = redis::cmd(if hash { "HSCAN" } else { "SSCAN" });
        cmd.arg(key).arg(cursor).arg("COUNT").arg(SCAN_COUNT);
        let (next, items): (u64, Vec<Vec<u8>>) = conn.query(&cmd).await?;
        Ok((next, pairs(items, hash)))
    }
}

impl Tiers for RedisTiers {
    async fn write(&self, change: &Change<'_>) -> Result<WriteReply, SyncError> {
        let name = self.keys.name(change.key);
        let mut inv = self.step_on(&self.scripts.write, change.key);
        inv.key(self.keys.wlist(&name));
        self.colocated_sponsors(&mut inv);
        inv.arg(flag(self.sync_on()))
            .arg(self.evict())
            .arg(kind(change.key))
            .arg(if change.add { "a" } else { "r" })
            .arg(self.ttl(change.key))
            .arg(self.quota(change.key, true))
            .arg(self.quota(change.key, false))
            .arg(change.status.map(flag).unwrap_or(""))
            .arg(owner(change.key))
            .arg(change.key.user_id().unwrap_or(0));
        let activity = match (change.via, change.key) {
            (Some(via), SponsorKey::Mnodes(id)) => Some((via, self.keys.activity(*id))),
            _ => None,
        };
        // KEYS so far: the key, meta, pending, write list, and on a single
        // server the sponsors set's three.
        let mut keys = if self.colocated() { 7 } else { 4 };
        match &activity {
            Some((via, stream)) if self.colocated() => {
                inv.key(stream);
                keys += 1;
                inv.arg(*via).arg(self.settings.activity_max.max(1));
            }
            _ => {
                inv.arg("").arg(0);
            }
        }
        match &change.limit {
            Some(limit) => {
                inv.key(limit.key);
                inv.arg(keys + 1)
                    .arg(limit.window_us)
                    .arg(limit.quota.max(1));
            }
            None => {
                inv.arg(0).arg(0).arg(0);
            }
        }
        let hash = matches!(change.key, SponsorKey::UserDetails(_));
        for (field, value) in change.items {
            inv.arg(*field);
            if hash {
                inv.arg(*value);
            }
        }
        let reply: Vec<Value> = self.run_local(inv).await?;
        let at = |i: usize| int(reply.get(i).unwrap_or(&Value::Nil), "write");
        let code = at(0)?;
        // The limit's count, when one was given: (remaining, reset µs) at `i`.
        let rate = |i: usize| -> Result<Option<LimitCount>, SyncError> {
            let remaining = at(i)?;
            Ok((remaining >= 0).then(|| LimitCount {
                allowed: true,
                remaining: remaining as u64,
                reset_us: at(i + 1).unwrap_or(0).max(0) as u64,
                retry_us: 0,
            }))
        };
        if code == -4 {
            return Ok(WriteReply::RateLimited(LimitCount {
                allowed: false,
                remaining: at(1)?.max(0) as u64,
                reset_us: at(2)?.max(0) as u64,
                retry_us: at(3)?.max(0) as u64,
            }));
        }
        if code == -3 {
            let limit = at(1)?.max(0) as u64;
            return Ok(WriteReply::QuotaExceeded {
                limit,
                rate: rate(2)?,
            });
        }
        let [_, sp, cond, count, stamp, lost, recorded, ..] = reply.as_slice() else {
            return Err(SyncError::protocol("write", "short reply"));
        };
        let rate = rate(7)?;
        if let (Some((via, stream)), false, 1) = (&activity, self.colocated(), code) {
            // The change is made and acknowledged whatever happens here: a
            // failure loses this one activity entry, never the change.
            let mut note = self.scripts.activity_note.prepare_invoke();
            note.key(stream)
                .arg(if change.add { "add" } else { "remove" })
                .arg(change.items.first().map_or("", |(member, _)| *member))
                .arg(*via)
                .arg(self.settings.activity_max.max(1))
                .arg(text(sp, "write")?)
                .arg(self.ttl(change.key));
            if let Err(e) = self.local.invoke::<i64>(&note).await {
                tracing::warn!(error.message = %e, sync.key = ?change.key, "could not append an activity entry");
            }
        }
        Ok(WriteReply::Done {
            changed: code == 1,
            sponsor: sponsor_of(&text(sp, "write")?),
            condition: condition(&text(cond, "write")?),
            count: int(count, "write")?.max(0) as u64,
            sponsors_lost: int(lost, "write")? == 1,
            recorded: int(recorded, "write")? == 1,
            stamp: text(stamp, "write")?.parse().ok(),
            rate,
        })
    }

    async fn read(
        &self,
        key: &SponsorKey,
        limit: usize,
        status: Option<bool>,
    ) -> Result<ReadReply, SyncError> {
        let mut inv = self.step_on(&self.scripts.read, key);
        self.colocated_sponsors(&mut inv);
        inv.arg(flag(self.sync_on()))
            .arg(self.evict())
            .arg(limit)
            .arg(kind(key))
            .arg(owner(key))
            .arg(status.map(flag).unwrap_or(""))
            .arg(self.ttl(key))
            .arg(key.user_id().unwrap_or(0));
        let reply: Vec<Value> = self.run_local(inv).await?;
        let mut it = reply.into_iter();
        let (Some(cond), Some(sp), Some(len), Some(lost)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(SyncError::protocol("read", "short reply"));
        };
        let len = int(&len, "read")?.max(0) as u64;
        let items = if len as usize <= limit {
            let raw = it
                .map(|v| {
                    redis::from_redis_value::<Vec<u8>>(v)
                        .map_err(|e| SyncError::protocol("read", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(pairs(raw, kind(key) == "hash"))
        } else {
            None
        };
        Ok(ReadReply {
            condition: condition(&text(&cond, "read")?),
            sponsor: sponsor_of(&text(&sp, "read")?),
            sponsors_lost: int(&lost, "read")? == 1,
            len,
            items,
        })
    }

    async fn scan_local(&self, key: &SponsorKey, cursor: u64) -> Result<(u64, Items), SyncError> {
        Self::scan(
            &self.local,
            &self.keys.name(key),
            kind(key) == "hash",
            cursor,
        )
        .await
        .map_err(SyncError::Local)
    }

    async fn sponsor_check(&self, user_id: u64) -> Result<(Condition, bool), SyncError> {
        let name = self.keys.sponsors();
        let mut inv = self.scripts.sponsor_check.prepare_invoke();
        inv.key(name)
            .key(self.keys.meta(name))
            .key(self.keys.pending(name))
            .arg(flag(self.sync_on()))
            .arg(self.evict())
            .arg(user_id);
        let reply: Vec<Value> = self.run_local(inv).await?;
        let [cond, member] = reply.as_slice() else {
            return Err(SyncError::protocol("sponsor check", "short reply"));
        };
        Ok((
            condition(&text(cond, "sponsor check")?),
            int(member, "sponsor check")? == 1,
        ))
    }

    async fn scan_pending(&self, key: &SponsorKey, cursor: u64) -> Result<(u64, Items), SyncError> {
        Self::scan(
            &self.local,
            &self.keys.pending(&self.keys.name(key)),
            true,
            cursor,
        )
        .await
        .map_err(SyncError::Local)
    }

    async fn confirm(
        &self,
        key: &SponsorKey,
        field: &[u8],
        written: &[u8],
        confirmed: &[u8],
    ) -> Result<(), SyncError> {
        let mut inv = self.scripts.confirm.prepare_invoke();
        inv.key(self.keys.pending(&self.keys.name(key)))
            .arg(field)
            .arg(written)
            .arg(confirmed);
        self.local
            .invoke::<i64>(&inv)
            .await
            .map_err(SyncError::Local)?;
        Ok(())
    }

    async fn forget(
        &self,
        key: &SponsorKey,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), SyncError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.gc.prepare_invoke();
        inv.key(self.keys.pending(&self.keys.name(key)));
        for (f, e) in entries {
            inv.arg(f.as_slice()).arg(e.as_slice());
        }
        self.local
            .invoke::<i64>(&inv)
            .await
            .map_err(SyncError::Local)?;
        Ok(())
    }

    async fn set_status(
        &self,
        key: &SponsorKey,
        sponsor: bool,
        settle: bool,
    ) -> Result<Option<bool>, SyncError> {
        let mut inv = self.step_on(&self.scripts.set_status, key);
        inv.arg(flag(self.sync_on()))
            .arg(flag(sponsor))
            .arg(flag(settle))
            .arg(self.ttl(key));
        let was: String = self.run_local(inv).await?;
        Ok(sponsor_of(&was))
    }

    async fn begin_fetch(
        &self,
        key: &SponsorKey,
        token: &str,
    ) -> Result<Option<Option<Stamp>>, SyncError> {
        let name = self.keys.name(key);
        let mut inv = self.scripts.begin_fetch.prepare_invoke();
        inv.key(self.keys.meta(&name))
            .key(self.keys.wlist(&name))
            .arg(token)
            .arg(self.fetch_lease_ms);
        let reply: Vec<Value> = self.run_local(inv).await?;
        if int(reply.first().unwrap_or(&Value::Nil), "begin fetch")? != 1 {
            return Ok(None);
        }
        let union = text(reply.get(1).unwrap_or(&Value::Nil), "begin fetch")?;
        Ok(Some(union.parse().ok()))
    }

    async fn stage(
        &self,
        key: &SponsorKey,
        token: &str,
        items: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, SyncError> {
        let name = self.keys.name(key);
        let hash = kind(key) == "hash";
        let mut inv = self.scripts.stage.prepare_invoke();
        inv.key(self.keys.meta(&name))
            .key(self.keys.staging(&name, token))
            .arg(token)
            .arg(self.fetch_lease_ms)
            .arg(kind(key));
        for (f, v) in items {
            inv.arg(f.as_slice());
            if hash {
                inv.arg(v.as_slice());
            }
        }
        let held: i64 = self.run_local(inv).await?;
        Ok(held == 1)
    }

    async fn finish_fetch(
        &self,
        key: &SponsorKey,
        token: &str,
        remote_stamp: Stamp,
    ) -> Result<bool, SyncError> {
        let name = self.keys.name(key);
        let mut inv = self.scripts.finish_fetch.prepare_invoke();
        inv.key(&name)
            .key(self.keys.meta(&name))
            .key(self.keys.staging(&name, token))
            .key(self.keys.wlist(&name))
            .arg(token)
            .arg(kind(key))
            .arg(remote_stamp)
            .arg(self.ttl(key));
        let done: i64 = self.run_local(inv).await?;
        Ok(done == 1)
    }

    async fn end_diff(&self, key: &SponsorKey, generation: &str) -> Result<bool, SyncError> {
        let mut inv = self.step_on(&self.scripts.end_diff, key);
        inv.arg(self.evict()).arg(generation);
        let ok: i64 = self.run_local(inv).await?;
        Ok(ok == 1)
    }

    async fn record(
        &self,
        key: &SponsorKey,
        generation: &str,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, SyncError> {
        let mut inv = self.step_on(&self.scripts.record, key);
        inv.arg(self.evict()).arg(generation);
        for (f, e) in entries {
            inv.arg(f.as_slice()).arg(e.as_slice());
        }
        let ok: i64 = self.run_local(inv).await?;
        Ok(ok == 1)
    }

    async fn begin_diff(&self, key: &SponsorKey) -> Result<DiffStart, SyncError> {
        let mut inv = self.step_on(&self.scripts.begin_diff, key);
        inv.arg(self.evict()).arg(owner(key));
        let reply: Vec<Value> = self.run_local(inv).await?;
        match int(reply.first().unwrap_or(&Value::Nil), "begin diff")? {
            1 => {
                let stamp = text(reply.get(1).unwrap_or(&Value::Nil), "begin diff")?
                    .parse()
                    .map_err(|_| SyncError::protocol("begin diff", "stamp"))?;
                let marker = text(reply.get(2).unwrap_or(&Value::Nil), "begin diff")?;
                let generation = text(reply.get(3).unwrap_or(&Value::Nil), "begin diff")?;
                Ok(DiffStart::Ready {
                    stamp,
                    marker: (!marker.is_empty()).then(|| marker.into_bytes()),
                    generation,
                })
            }
            -1 => Ok(DiffStart::NotSponsor),
            _ => Ok(DiffStart::NotComplete),
        }
    }

    async fn remote_apply(
        &self,
        key: &SponsorKey,
        entries: &[(Vec<u8>, Push, Stamp, Vec<u8>)],
    ) -> Result<Stamp, SyncError> {
        let name = self.keys.name(key);
        let mut inv = self.scripts.remote_apply.prepare_invoke();
        inv.key(&name)
            .key(self.keys.stamps(&name))
            .key(self.keys.meta(&name))
            .arg(kind(key));
        for (field, how, stamp, value) in entries {
            inv.arg(field.as_slice())
                .arg(how.code())
                .arg(*stamp)
                .arg(value.as_slice());
        }
        let reply: Vec<Value> = self
            .remote()?
            .invoke(&inv)
            .await
            .map_err(|e| self.remote_err(e))?;
        text(reply.get(1).unwrap_or(&Value::Nil), "remote apply")?
            .parse()
            .map_err(|_| SyncError::protocol("remote apply", "stamp"))
    }

    async fn remote_scan(&self, key: &SponsorKey, cursor: u64) -> Result<(u64, Items), SyncError> {
        Self::scan(
            self.remote()?,
            &self.keys.name(key),
            kind(key) == "hash",
            cursor,
        )
        .await
        .map_err(|e| self.remote_err(e))
    }

    async fn remote_stamp(&self, key: &SponsorKey) -> Result<Stamp, SyncError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.keys.meta(&self.keys.name(key))).arg("s");
        let s: Option<String> = self
            .remote()?
            .query(&cmd)
            .await
            .map_err(|e| self.remote_err(e))?;
        Ok(s.and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    async fn push_activity(&self, user_id: u64) -> Result<(), SyncError> {
        let name = self.keys.activity(user_id);
        let meta = self.keys.meta(&self.keys.mnodes(user_id));
        let sponsor: Option<String> = self
            .local
            .query(redis::cmd("HGET").arg(&meta).arg("sp"))
            .await
            .map_err(SyncError::Local)?;
        if sponsor.as_deref() != Some("1") {
            return Ok(());
        }
        let last: Vec<(String, Vec<(String, String)>)> = self
            .remote()?
            .query(
                redis::cmd("XREVRANGE")
                    .arg(&name)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await
            .map_err(|e| self.remote_err(e))?;
        let after = last
            .first()
            .map(|(id, _)| format!("({id}"))
            .unwrap_or_else(|| "-".to_owned());
        let entries: Vec<(String, Vec<(String, String)>)> = self
            .local
            .query(
                redis::cmd("XRANGE")
                    .arg(&name)
                    .arg(after)
                    .arg("+")
                    .arg("COUNT")
                    .arg(self.settings.activity_max.max(1)),
            )
            .await
            .map_err(SyncError::Local)?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.activity_append.prepare_invoke();
        inv.key(&name).arg(self.settings.activity_max.max(1));
        add_activity_args(&mut inv, &entries);
        let _: i64 = self
            .remote()?
            .invoke(&inv)
            .await
            .map_err(|e| self.remote_err(e))?;
        Ok(())
    }

    async fn activity_lifetime(&self, user_id: u64, sponsor: bool) -> Result<(), SyncError> {
        let name = self.keys.activity(user_id);
        let mut cmd = if sponsor {
            redis::cmd("PERSIST")
        } else {
            redis::cmd("EXPIRE")
        };
        cmd.arg(&name);
        if !sponsor {
            cmd.arg(self.settings.ttl_secs.max(1));
        }
        let _: i64 = self.local.query(&cmd).await.map_err(SyncError::Local)?;
        Ok(())
    }

    async fn restore_activity(&self, user_id: u64) -> Result<(), SyncError> {
        let name = self.keys.activity(user_id);
        let entries: Vec<(String, Vec<(String, String)>)> = self
            .remote()?
            .query(
                redis::cmd("XREVRANGE")
                    .arg(&name)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(self.settings.activity_max.max(1)),
            )
            .await
            .map_err(|e| self.remote_err(e))?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.activity_restore.prepare_invoke();
        inv.key(&name).arg(self.settings.activity_max.max(1));
        add_activity_args(&mut inv, &entries);
        let _: i64 = self.local.invoke(&inv).await.map_err(SyncError::Local)?;
        Ok(())
    }
}
