//! A short-lived copy of each user's sorted exclusion list, shared by the
//! requests that read it at the same time.
//!
//! Paging in bytewise order over a Redis set cannot start in the middle: a
//! page of a 100,000-member set reads the whole set (in `SSCAN` steps, so the
//! Redis is never blocked) and sorts it. Without this cache every concurrent
//! page request did that, each holding its own copy: 64 clients paging one
//! large set took the process to half a gigabyte. With it, one request reads
//! and sorts (the others wait for it: moka's `try_get_with` is single-flight),
//! and every request within the next second is served from the same copy.
//!
//! Freshness: an entry is keyed by what changes when the set changes (its
//! size, the stamp of the last change made through the API, the run it was
//! last made complete in), read in one round trip per request, so a change
//! through the API is seen at once; a change by another program that keeps
//! the size (one add and one remove) is seen within the entry's one-second
//! life. Only complete lists are kept; memory is bounded by a byte budget.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::store::{ExclusionList, Store, StoreError, StoreResult};

/// How long a copy may be served.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// The most bytes of ids kept at once.
pub const BUDGET_BYTES: u64 = 32 << 20;

/// A list with its strong ETag.
#[derive(Debug)]
pub struct CachedList {
    pub list: ExclusionList,
    pub etag: String,
}

/// The strong ETag of a user's exclusions: a digest of the sorted ids (and
/// of whether the list is complete), so it changes whenever the set does.
pub fn etag_of(list: &ExclusionList) -> String {
    let mut hash = Sha256::new();
    hash.update([u8::from(list.complete)]);
    for id in &list.ids {
        hash.update(id.as_bytes());
        hash.update([0]);
    }
    format!("\"{}\"", hex::encode(&hash.finalize()[..16]))
}

type Validator = (u64, Option<String>, Option<String>);

/// Lists shorter than this are read fresh every time: cheap, and exact.
pub const LARGE: usize = 2_000;

enum Uncached {
    Incomplete(Arc<CachedList>),
    Failed(StoreError),
}

#[derive(Clone)]
pub struct ListCache {
    entries: Cache<(u64, Validator), Arc<CachedList>>,
    /// The validator each large list was last seen with: a request that
    /// sees another one drops the old copy, so a set that changes and then
    /// looks the same again (an add and a remove) is never served an older
    /// copy kept under the same validator.
    seen: Arc<std::sync::Mutex<std::collections::HashMap<u64, Validator>>>,
}

impl Default for ListCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ListCache {
    pub fn new() -> Self {
        let entries = Cache::builder()
            .time_to_live(MAX_AGE)
            .max_capacity(BUDGET_BYTES)
            .weigher(|_, v: &Arc<CachedList>| {
                let bytes: usize = v.list.ids.iter().map(|id| id.len() + 24).sum();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        Self {
            entries,
            seen: Arc::default(),
        }
    }

    fn last_seen(&self, user_id: u64) -> Option<Validator> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&user_id).cloned()
    }

    fn remember(&self, user_id: u64, validator: Option<Validator>) -> Option<Validator> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match validator {
            Some(v) => seen.insert(user_id, v),
            None => seen.remove(&user_id),
        }
    }

    /// The user's list: for a large one, a copy at most [`MAX_AGE`] old that
    /// is still current, or read now (one read for all concurrent callers).
    pub async fn exclusions(&self, store: &Store, user_id: u64) -> StoreResult<Arc<CachedList>> {
        let Some(before) = self.last_seen(user_id) else {
            // Not known to be large: read it; keep it if it is.
            let list = Self::read(store, user_id).await?;
            if list.list.complete && list.list.ids.len() >= LARGE {
                let validator = store.exclusions_validator(user_id).await?;
                self.remember(user_id, Some(validator.clone()));
                self.entries
                    .insert((user_id, validator), Arc::clone(&list))
                    .await;
            }
            return Ok(list);
        };
        let validator = store.exclusions_validator(user_id).await?;
        if validator != before {
            self.entries.invalidate(&(user_id, before)).await;
            self.remember(user_id, Some(validator.clone()));
        }
        let read = async {
            let list = Self::read(store, user_id).await.map_err(Uncached::Failed)?;
            if list.list.complete {
                Ok(list)
            } else {
                // A list that may grow once fetched back is never kept.
                Err(Uncached::Incomplete(list))
            }
        };
        let list = match self.entries.try_get_with((user_id, validator), read).await {
            Ok(list) => list,
            Err(e) => match e.as_ref() {
                Uncached::Incomplete(list) => Arc::clone(list),
                Uncached::Failed(e) => return Err(e.clone()),
            },
        };
        if list.list.ids.len() < LARGE {
            // Small again: read fresh from now on.
            self.remember(user_id, None);
        }
        Ok(list)
    }

    async fn read(store: &Store, user_id: u64) -> StoreResult<Arc<CachedList>> {
        let list = store.exclusions(user_id).await?;
        let etag = etag_of(&list);
        Ok(Arc::new(CachedList { list, etag }))
    }
}
