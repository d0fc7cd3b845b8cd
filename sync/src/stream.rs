//! Journal entries: decoding the Stream replies and planning how a key's
//! entries reach the remote. Pure functions, unit-tested.

use std::collections::HashMap;

use redis::Value;

use crate::remote::SetOp;

/// One entry as read from the Stream; `fields` is `None` for an entry that
/// was deleted while it was pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub id: String,
    pub fields: Option<Vec<(String, Vec<u8>)>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Set(SetOp, Vec<u8>),
    Full,
}

/// A decoded journal entry (format: see `journal.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub id: String,
    pub key: String,
    pub v: u64,
    pub op: Op,
}

/// How one key's entries of a batch reach the remote.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan<'a> {
    /// Only set operations with consecutive versions from `first_v`.
    Ops {
        first_v: u64,
        ops: Vec<(SetOp, &'a [u8])>,
    },
    /// Copy the whole key.
    Full,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Decodes an `XREADGROUP` reply (RESP2 arrays or RESP3 maps; `Nil` on timeout).
pub(crate) fn parse_read(reply: &Value) -> Vec<RawEntry> {
    let streams: Vec<&Value> = match reply {
        Value::Array(items) => items
            .iter()
            .filter_map(|s| match s {
                Value::Array(pair) if pair.len() == 2 => Some(&pair[1]),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(_, entries)| entries).collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for entries in streams {
        let Value::Array(entries) = entries else {
            continue;
        };
        for entry in entries {
            let Value::Array(parts) = entry else { continue };
            let Some(id) = parts.first().and_then(text) else {
                continue;
            };
            let fields = match parts.get(1) {
                Some(Value::Array(kv)) => Some(
                    kv.chunks(2)
                        .filter_map(|c| Some((text(c.first()?)?, bytes(c.get(1)?)?)))
                        .collect(),
                ),
                Some(Value::Map(kv)) => Some(
                    kv.iter()
                        .filter_map(|(k, v)| Some((text(k)?, bytes(v)?)))
                        .collect(),
                ),
                _ => None,
            };
            out.push(RawEntry { id, fields });
        }
    }
    out
}

/// The cursor and number of ids of an `XAUTOCLAIM … JUSTID` reply.
pub(crate) fn parse_autoclaim(reply: &Value) -> (String, usize) {
    match reply {
        Value::Array(parts) if !parts.is_empty() => {
            let next = text(&parts[0]).unwrap_or_else(|| "0-0".into());
            let claimed = match parts.get(1) {
                Some(Value::Array(ids)) => ids.len(),
                _ => 0,
            };
            (next, claimed)
        }
        _ => ("0-0".into(), 0),
    }
}

/// A journal entry, or `None` when it is malformed (acked and counted).
pub(crate) fn decode(raw: &RawEntry) -> Option<Entry> {
    let fields = raw.fields.as_ref()?;
    let get = |name: &str| {
        fields
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_slice())
    };
    let key = String::from_utf8(get("k")?.to_vec()).ok()?;
    let v = std::str::from_utf8(get("v")?).ok()?.parse().ok()?;
    let op = match get("op")? {
        b"full" => Op::Full,
        b"sadd" => Op::Set(SetOp::Add, get("m")?.to_vec()),
        b"srem" => Op::Set(SetOp::Rem, get("m")?.to_vec()),
        _ => return None,
    };
    Some(Entry {
        id: raw.id.clone(),
        key,
        v,
        op,
    })
}

/// Groups entries by key, keys in order of first appearance, entries in order.
pub(crate) fn group_by_key(entries: Vec<Entry>) -> Vec<(String, Vec<Entry>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    for e in entries {
        match index.get(&e.key) {
            Some(&i) => groups[i].1.push(e),
            None => {
                index.insert(e.key.clone(), groups.len());
                groups.push((e.key.clone(), vec![e]));
            }
        }
    }
    groups
}

/// Set operations with consecutive versions go as they are; anything else
/// (a `full`, a gap held by another worker, a repeat) copies the key.
pub(crate) fn plan(entries: &[Entry]) -> Plan<'_> {
    let Some(first) = entries.first() else {
        return Plan::Full;
    };
    let mut ops = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        match &e.op {
            Op::Set(op, m) if e.v == first.v + i as u64 => ops.push((*op, m.as_slice())),
            _ => return Plan::Full,
        }
    }
    Plan::Ops {
        first_v: first.v,
        ops,
    }
}

/// Milliseconds since the epoch encoded in a Stream id (`<ms>-<seq>`).
pub(crate) fn id_millis(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
