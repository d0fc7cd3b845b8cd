//! The primaries of a Redis Cluster, from `CLUSTER SLOTS`.
//!
//! Keyspace notifications, `SCAN`, `CONFIG` and `INFO` are per node: the
//! sync machinery runs them on every primary (on a single server, on that
//! server), and re-reads the topology to follow a failover or a primary
//! added or removed.

use redis::Value;

/// The number of hash slots of every Redis Cluster.
pub const SLOTS: u32 = 16384;

/// One primary and the slot ranges it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Primary {
    pub host: String,
    pub port: u16,
    /// The node id (empty when the server did not say).
    pub id: String,
    pub ranges: Vec<(u16, u16)>,
}

impl Primary {
    /// `host:port`, the key the sync machinery tracks nodes by.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The hash slot of a key (CRC16/XMODEM of the key or of its hash tag, the
/// part between the first `{` and the next `}` when not empty). The crate
/// computes it too but does not hand the number out.
pub fn slot_of(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

impl Primary {
    /// Whether the primary serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    /// A name of the form `{prefix}{n}` (`n` = 0, 1, …, the braces a hash
    /// tag) whose slot this primary serves: how the service keeps one key of
    /// its own on each primary (the remote's sentinels).
    pub fn own_key(&self, prefix: &str) -> String {
        (0u32..)
            .map(|n| format!("{prefix}{{{n}}}"))
            .find(|k| self.serves(slot_of(k.as_bytes())))
            .unwrap_or_else(|| prefix.to_owned())
    }
}

/// The primaries of a `CLUSTER SLOTS` reply, sorted by address, and how
/// many slots they serve together (a cluster is whole at [`SLOTS`]).
pub fn parse_slots(reply: &Value) -> Result<(Vec<Primary>, u32), String> {
    let Value::Array(entries) = reply else {
        return Err("CLUSTER SLOTS: not an array".into());
    };
    let mut primaries: Vec<Primary> = Vec::new();
    let mut served = 0u32;
    for entry in entries {
        let Value::Array(fields) = entry else {
            return Err("CLUSTER SLOTS: entry is not an array".into());
        };
        let (Some(start), Some(end), Some(Value::Array(node))) =
            (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err("CLUSTER SLOTS: short entry".into());
        };
        let start: u16 = redis::from_redis_value_ref(start).map_err(|e| e.to_string())?;
        let end: u16 = redis::from_redis_value_ref(end).map_err(|e| e.to_string())?;
        if end < start || u32::from(end) >= SLOTS {
            return Err("CLUSTER SLOTS: bad range".into());
        }
        let (Some(host), Some(port)) = (node.first(), node.get(1)) else {
            return Err("CLUSTER SLOTS: node without an address".into());
        };
        let host: String = redis::from_redis_value_ref(host).map_err(|e| e.to_string())?;
        let port: u16 = redis::from_redis_value_ref(port).map_err(|e| e.to_string())?;
        let id: String = node
            .get(2)
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or_default();
        served += u32::from(end - start) + 1;
        match primaries
            .iter_mut()
            .find(|p| p.host == host && p.port == port)
        {
            Some(p) => p.ranges.push((start, end)),
            None => primaries.push(Primary {
                host,
                port,
                id,
                ranges: vec![(start, end)],
            }),
        }
    }
    primaries.sort_by_key(Primary::addr);
    Ok((primaries, served))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_cluster_specification_and_the_crate() {
        // The test vector of the Redis Cluster specification.
        assert_eq!(slot_of(b"123456789"), 0x31C3);
        for key in [
            "user:42:mnodes",
            "sync:m:{user:42:mnodes}",
            "foo{}{bar}",
            "{}x",
            "a{b",
            "",
        ] {
            assert_eq!(
                redis::cluster_routing::Slot::new(slot_of(key.as_bytes())),
                Some(redis::cluster_routing::Slot::for_key(key)),
                "{key}"
            );
        }
        assert_eq!(
            slot_of(b"sync:p:{user:42:mnodes}"),
            slot_of(b"user:42:mnodes")
        );
    }

    #[test]
    fn each_primary_has_a_key_of_its_own() {
        let reply = Value::Array(vec![
            entry(0, 5460, 7000, "a"),
            entry(5461, 10922, 7001, "b"),
            entry(10923, 16383, 7002, "c"),
        ]);
        let (primaries, _) = parse_slots(&reply).unwrap();
        for p in &primaries {
            let key = p.own_key("sync:alive:");
            assert!(key.starts_with("sync:alive:{"), "{key}");
            assert!(p.serves(slot_of(key.as_bytes())), "{key} on {}", p.addr());
        }
    }

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(start: i64, end: i64, port: i64, id: &str) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![b("127.0.0.1"), Value::Int(port), b(id)]),
            // A replica: never a primary.
            Value::Array(vec![b("127.0.0.1"), Value::Int(port + 100), b("r")]),
        ])
    }

    #[test]
    fn primaries_are_grouped_with_their_ranges_and_coverage_counted() {
        let reply = Value::Array(vec![
            entry(5461, 10922, 7001, "b"),
            entry(0, 5460, 7000, "a"),
            entry(10923, 16383, 7002, "c"),
        ]);
        let (primaries, served) = parse_slots(&reply).unwrap();
        assert_eq!(served, SLOTS);
        assert_eq!(
            primaries.iter().map(Primary::addr).collect::<Vec<_>>(),
            ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
        );
        assert_eq!(primaries[0].ranges, vec![(0, 5460)]);
        assert_eq!(primaries[0].id, "a");
    }

    #[test]
    fn a_cluster_with_unserved_slots_is_not_whole() {
        let reply = Value::Array(vec![entry(0, 99, 7000, "a"), entry(200, 299, 7000, "a")]);
        let (primaries, served) = parse_slots(&reply).unwrap();
        assert_eq!(served, 200);
        assert_eq!(primaries.len(), 1);
        assert_eq!(primaries[0].ranges, vec![(0, 99), (200, 299)]);
        assert!(parse_slots(&Value::Nil).is_err());
        assert!(parse_slots(&Value::Array(vec![entry(9, 3, 1, "x")])).is_err());
    }
}
