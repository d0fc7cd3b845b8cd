//! Unit tests of `stream.rs`.

use super::*;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn raw(id: &str, fields: &[(&str, &str)]) -> RawEntry {
    RawEntry {
        id: id.into(),
        fields: Some(
            fields
                .iter()
                .map(|(f, v)| (f.to_string(), v.as_bytes().to_vec()))
                .collect(),
        ),
    }
}

fn entry(v: u64, op: Op) -> Entry {
    Entry {
        id: format!("{v}-0"),
        key: "user:1:mnodes".into(),
        v,
        op,
    }
}

#[test]
fn parses_resp2_and_resp3_replies_with_deleted_entries() {
    let entries = Value::Array(vec![
        Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("k"), bulk("a"), bulk("v"), bulk("3")]),
        ]),
        Value::Array(vec![bulk("2-0"), Value::Nil]),
    ]);
    let resp2 = Value::Array(vec![Value::Array(vec![
        bulk("sync:journal"),
        entries.clone(),
    ])]);
    let resp3 = Value::Map(vec![(bulk("sync:journal"), entries)]);
    for reply in [resp2, resp3] {
        let got = parse_read(&reply);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], raw("1-0", &[("k", "a"), ("v", "3")]));
        assert_eq!(got[1].fields, None);
    }
    assert!(parse_read(&Value::Nil).is_empty());
    let claim = Value::Array(vec![
        bulk("5-0"),
        Value::Array(vec![bulk("1-0"), bulk("2-0")]),
        Value::Array(vec![]),
    ]);
    assert_eq!(parse_autoclaim(&claim), ("5-0".into(), 2));
}

#[test]
fn decodes_the_journal_format() {
    let e = decode(&raw(
        "7-1",
        &[
            ("k", "user:1:mnodes"),
            ("v", "4"),
            ("op", "sadd"),
            ("m", "x"),
        ],
    ))
    .unwrap();
    assert_eq!(e.op, Op::Set(SetOp::Add, b"x".to_vec()));
    assert_eq!(
        (e.v, e.key.as_str(), e.id.as_str()),
        (4, "user:1:mnodes", "7-1")
    );
    assert_eq!(
        decode(&raw("1-0", &[("k", "a"), ("v", "1"), ("op", "full")]))
            .unwrap()
            .op,
        Op::Full
    );
    for bad in [
        raw("1-0", &[("k", "a"), ("v", "x"), ("op", "full")]),
        raw("1-0", &[("k", "a"), ("v", "1"), ("op", "sadd")]),
        raw(
            "1-0",
            &[("k", "a"), ("v", "1"), ("op", "lpush"), ("m", "x")],
        ),
        raw("1-0", &[("v", "1"), ("op", "full")]),
        RawEntry {
            id: "1-0".into(),
            fields: None,
        },
    ] {
        assert_eq!(decode(&bad), None, "{bad:?}");
    }
    assert_eq!(id_millis("1700000000123-4"), Some(1_700_000_000_123));
    assert_eq!(id_millis("x"), None);
}

#[test]
fn plans_ops_only_for_consecutive_set_operations() {
    let add = |v, m: &str| entry(v, Op::Set(SetOp::Add, m.as_bytes().to_vec()));
    let rem = |v, m: &str| entry(v, Op::Set(SetOp::Rem, m.as_bytes().to_vec()));
    let run = vec![add(5, "a"), rem(6, "a"), add(7, "b")];
    assert_eq!(
        plan(&run),
        Plan::Ops {
            first_v: 5,
            ops: vec![
                (SetOp::Add, &b"a"[..]),
                (SetOp::Rem, &b"a"[..]),
                (SetOp::Add, &b"b"[..])
            ]
        }
    );
    assert_eq!(plan(&[add(5, "a"), add(7, "b")]), Plan::Full, "gap");
    assert_eq!(plan(&[add(5, "a"), entry(6, Op::Full)]), Plan::Full);
    assert_eq!(plan(&[add(5, "a"), add(5, "a")]), Plan::Full, "repeat");
    assert_eq!(plan(&[]), Plan::Full);
}

#[test]
fn groups_keep_first_appearance_order() {
    let mut a = entry(1, Op::Full);
    a.key = "a".into();
    let mut b = entry(1, Op::Full);
    b.key = "b".into();
    let mut a2 = entry(2, Op::Full);
    a2.key = "a".into();
    let groups = group_by_key(vec![a, b, a2]);
    assert_eq!(
        groups
            .iter()
            .map(|(k, l)| (k.as_str(), l.len()))
            .collect::<Vec<_>>(),
        vec![("a", 2), ("b", 1)]
    );
}
