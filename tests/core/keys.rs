//! The key layout: id escaping, no id a prefix of another's keys, versions sorting in commit order.

use agent_session::core::keys::{
    batch_key, escape_id, head_key, id_of_head_key, live_key, live_prefix, record_prefixes, segment_key, snapshot_key,
    unescape_id, HEAD_PREFIX,
};
use proptest::prelude::*;

#[test]
fn escaping_examples() {
    assert_eq!(escape_id("abc-XYZ_09"), "abc-XYZ_09~");
    assert_eq!(escape_id("a/b"), "a%2Fb~");
    assert_eq!(escape_id("%"), "%25~");
    assert_eq!(escape_id("~"), "%7E~");
    assert_eq!(escape_id(".."), "%2E%2E~");
    assert_eq!(escape_id("\0"), "%00~");
    assert_eq!(escape_id("é"), "%C3%A9~");
    assert_eq!(escape_id(""), "~");
    assert_eq!(head_key("a/b"), "h/a%2Fb~");
    assert_eq!(batch_key("s", 1, 2), "e/s~/0000000000000001/0000000000000002");
    assert_eq!(snapshot_key("s", 255, u64::MAX), "s/s~/00000000000000ff/ffffffffffffffff");
    assert_eq!(segment_key("a b", 0x1234_5678_9abc_def0, 0), "g/a%20b~/123456789abcdef0/0000000000000000");
    assert_eq!(live_key("s", 16, 3), "t/s~/0000000000000010/0000000000000003");
    assert_eq!(live_prefix("s", 16), "t/s~/0000000000000010/");
    assert_eq!(record_prefixes("s"), ["e/s~/".to_owned(), "s/s~/".to_owned(), "g/s~/".to_owned(), "t/s~/".to_owned()]);
}

#[test]
fn unescape_refuses_what_escape_cannot_produce() {
    for bad in ["", "abc", "a~~", "~a~", "a/b~", "%4~", "%~", "%zz~", "%4a~", "%c3%a9~", "%FF~", "a b~", "é~", "a~b"] {
        assert_eq!(unescape_id(bad), None, "{bad:?}");
    }
    assert_eq!(unescape_id("%C3%A9~").as_deref(), Some("é"));
    assert_eq!(id_of_head_key("h/a%2Fb~").as_deref(), Some("a/b"));
    assert_eq!(id_of_head_key("e/a~/0000000000000001/0000000000000001"), None);
    assert_eq!(id_of_head_key("h/a"), None);
    assert!(HEAD_PREFIX == "h/");
}

/// Ids made of the characters that break naive layouts.
fn nasty_id() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('/'),
            Just('%'),
            Just('\0'),
            Just('~'),
            Just('.'),
            Just('a'),
            Just('Z'),
            Just('0'),
            Just('_'),
            Just('-'),
            Just('é'),
            Just('日'),
            Just('😀'),
            Just(' '),
            Just('2'),
            Just('F'),
        ],
        0..10,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![nasty_id(), any::<String>(), Just("..".to_owned()), Just("a/../b".to_owned())]
}

/// Pairs of different ids, half of them one a prefix of the other (the dangerous case).
fn id_pair() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (any_id(), any_id()),
        (any_id(), nasty_id().prop_filter("non-empty suffix", |s| !s.is_empty())).prop_map(|(a, suffix)| {
            let b = format!("{a}{suffix}");
            (a, b)
        }),
    ]
    .prop_filter("different ids", |(a, b)| a != b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn escape_round_trips(id in any_id()) {
        let escaped = escape_id(&id);
        prop_assert_eq!(unescape_id(&escaped), Some(id.clone()));
        prop_assert_eq!(id_of_head_key(&head_key(&id)), Some(id.clone()));
        // Only the unreserved set, `%` and the final terminator: no `/` can split a key.
        let (body, last) = escaped.split_at(escaped.len() - 1);
        prop_assert_eq!(last, "~");
        prop_assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'%'), "{}", escaped);
    }

    #[test]
    fn no_id_is_a_prefix_of_another_ids_keys((a, b) in id_pair(), v in any::<u64>(), t in any::<u64>()) {
        prop_assert_ne!(escape_id(&a), escape_id(&b));
        for (x, y) in [(&a, &b), (&b, &a)] {
            prop_assert!(!head_key(y).starts_with(&head_key(x)), "head {:?} / {:?}", x, y);
            let [batches_x, snapshots_x, segments_x, live_x] = record_prefixes(x);
            let [batches_y, snapshots_y, segments_y, live_y] = record_prefixes(y);
            prop_assert!(!live_y.starts_with(&live_x));
            prop_assert!(!live_key(y, t, v).starts_with(&live_x), "live flush of {:?} under {:?}", y, x);
            prop_assert!(live_key(x, t, v).starts_with(&live_x));
            prop_assert!(!segments_y.starts_with(&segments_x));
            prop_assert!(!segment_key(y, v, t).starts_with(&segments_x), "segment of {:?} under {:?}", y, x);
            prop_assert!(segment_key(x, v, t).starts_with(&segments_x));
            prop_assert!(!batches_y.starts_with(&batches_x));
            prop_assert!(!snapshots_y.starts_with(&snapshots_x));
            prop_assert!(!batch_key(y, v, t).starts_with(&batches_x), "batch of {:?} under {:?}", y, x);
            prop_assert!(!snapshot_key(y, v, t).starts_with(&snapshots_x), "snapshot of {:?} under {:?}", y, x);
            // Each id's own records are found by its own prefixes (delete and sweep list them).
            prop_assert!(batch_key(x, v, t).starts_with(&batches_x));
            prop_assert!(snapshot_key(x, v, t).starts_with(&snapshots_x));
        }
    }

    #[test]
    fn versions_sort_in_commit_order(id in any_id(), v1 in any::<u64>(), v2 in any::<u64>(), t1 in any::<u64>(), t2 in any::<u64>()) {
        let (lo, hi) = (v1.min(v2), v1.max(v2));
        if lo < hi {
            // Whatever the tokens: a later version sorts after an earlier one.
            prop_assert!(batch_key(&id, lo, t1) < batch_key(&id, hi, t2));
            prop_assert!(batch_key(&id, lo, t2) < batch_key(&id, hi, t1));
            prop_assert!(snapshot_key(&id, lo, t1) < snapshot_key(&id, hi, t2));
        }
        let (tlo, thi) = (t1.min(t2), t1.max(t2));
        if tlo < thi {
            prop_assert!(batch_key(&id, v1, tlo) < batch_key(&id, v1, thi));
        }
    }
}
