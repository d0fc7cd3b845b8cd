//! Fetch-back: merging a sponsor key's remote copy into the local Redis
//! before its first use (after a flush, an eviction, or a re-promotion).
//!
//! The merge keeps local changes: set members removed while the key was
//! unhydrated are tombstoned (`sync:tomb:{key}`) and stay removed; hash fields
//! present locally are newer than the remote's. Afterwards the key is
//! hydrated (`h=1`), its version is above both sides', and a `full` journal
//! entry carries the merged state to the remote — unless the merge copied the
//! remote exactly, in which case the local version simply takes the remote's.
//!
//! Concurrent fetch-backs of one key in this process share one task; other
//! processes are safe too, since the merge is a no-op on a hydrated key.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::config::LUA_CHUNK;
use crate::error::SyncError;
use crate::keys::{SponsorKey, JOURNAL};
use crate::local::{owner_arg, LocalState};
use crate::Inner;

/// KEYS: key, meta(key), tomb(key), journal, sponsors, meta(sponsors)
/// ARGV: uid ('' for the sponsors set), remote version, remote type, items...
/// Returns -2 sponsors set unhydrated, -3 owner not a sponsor, 0 nothing to
/// do, 1 exact copy of the remote, 2 merged (and journaled).
pub(crate) fn merge_script() -> String {
    format!(
        r#"
local CHUNK = {LUA_CHUNK}
local uid = ARGV[1]
if uid ~= '' then
  if needs_fetch(KEYS[6], KEYS[5]) then return -2 end
  if redis.call('SISMEMBER', KEYS[5], uid) == 0 then return -3 end
end
if not needs_fetch(KEYS[2], KEYS[1]) then return 0 end
local rt = ARGV[3]
local lt = redis.call('TYPE', KEYS[1])['ok']
local tomb, tombs = {{}}, 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  tomb[m] = true
  tombs = tombs + 1
end
local events = 0
if rt == 'set' and (lt == 'set' or lt == 'none') then
  local batch = {{}}
  for i = 4, #ARGV do
    if not tomb[ARGV[i]] then batch[#batch + 1] = ARGV[i] end
    if #batch > 0 and (#batch >= CHUNK or i == #ARGV) then
      if redis.call('SADD', KEYS[1], unpack(batch)) > 0 then events = events + 1 end
      batch = {{}}
    end
  end
elseif rt == 'hash' and (lt == 'hash' or lt == 'none') then
  for i = 4, #ARGV - 1, 2 do
    if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then events = events + 1 end
  end
end
if uid ~= '' and redis.call('PERSIST', KEYS[1]) == 1 then events = events + 1 end
redis.call('DEL', KEYS[3])
local lv = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
local rv = tonumber(ARGV[2])
local exact = lt == 'none' and tombs == 0 and lv <= rv
local v = rv
if not exact then v = math.max(lv, rv) + 1 end
redis.call('HSET', KEYS[2], 'v', v, 'h', '1', 'p', redis.call('EXISTS', KEYS[1]))
if events > 0 then redis.call('HINCRBY', KEYS[2], 'e', events) end
if exact then return 1 end
redis.call('XADD', KEYS[4], '*', 'k', KEYS[1], 'v', v, 'op', 'full')
return 2
"#
    )
}

pub(crate) type FetchTask = Shared<BoxFuture<'static, Result<(), SyncError>>>;

/// Where a key stands after [`Inner::hydrate`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Hydrated {
    Ready,
    NotSponsor,
}

impl Inner {
    /// Makes `key` usable locally: fetches back the sponsors set first when
    /// needed, then the key itself (only a current sponsor's keys).
    pub(crate) async fn hydrate(self: &Arc<Self>, key: &SponsorKey) -> Result<Hydrated, SyncError> {
        for _ in 0..4 {
            match self.local_state(key, false).await? {
                LocalState::SponsorsUnhydrated => self.fetch_task(SponsorKey::Sponsors).await?,
                LocalState::Unhydrated => self.fetch_task(key.clone()).await?,
                LocalState::NotSponsor => return Ok(Hydrated::NotSponsor),
                LocalState::Ready { .. } => return Ok(Hydrated::Ready),
            }
        }
        Err(SyncError::protocol(
            "fetch back",
            "the key kept losing its hydration",
        ))
    }

    /// The running merge of `key`, or a new one. It runs as its own task, so
    /// a caller that gives up (request timeout) does not cancel it.
    pub(crate) fn fetch_task(self: &Arc<Self>, key: SponsorKey) -> FetchTask {
        let name = self.keys.name(&key);
        let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = inflight.get(&name) {
            return task.clone();
        }
        let inner = Arc::clone(self);
        let task_name = name.clone();
        let handle = tokio::spawn(async move {
            let outcome = inner.merge_from_remote(&key).await;
            inner
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&task_name);
            outcome
        });
        let task = async move {
            handle.await.unwrap_or_else(|e| {
                Err(SyncError::protocol(
                    "fetch back",
                    format!("task failed: {e}"),
                ))
            })
        }
        .boxed()
        .shared();
        inflight.insert(name, task.clone());
        task
    }

    async fn merge_from_remote(&self, key: &SponsorKey) -> Result<(), SyncError> {
        let started = Instant::now();
        let name = self.keys.name(key);
        let (rv, content) = self
            .remote_read(&name)
            .await
            .inspect_err(|e| self.metrics.error(e.kind()))?;
        let sponsors = self.keys.sponsors();
        let mut inv = self.scripts.merge.prepare_invoke();
        inv.key(&name)
            .key(self.keys.meta(&name))
            .key(self.keys.tombstones(&name))
            .key(JOURNAL)
            .key(sponsors)
            .key(self.keys.meta(sponsors))
            .arg(owner_arg(key))
            .arg(rv)
            .arg(&content.kind);
        if content.kind == "set" || content.kind == "hash" {
            for item in &content.items {
                inv.arg(item.as_slice());
            }
        }
        let code: i64 = self.local.invoke(&inv).await.map_err(|e| {
            self.metrics.error("local");
            SyncError::Local(e)
        })?;
        if code > 0 {
            self.metrics.fetchbacks.inc();
            self.metrics
                .fetchback_seconds
                .observe(started.elapsed().as_secs_f64());
            tracing::debug!(key = %name, remote_version = rv, exact = code == 1, "fetched back");
        }
        Ok(())
    }
}
