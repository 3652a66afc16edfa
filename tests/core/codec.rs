//! The codec: round trips, and bad bytes that must give `CorruptRecord` naming the key, never a panic.

use std::collections::BTreeMap;
use std::rc::Rc;

use agent_session::core::codec::{
    checksum, decode_batch, decode_head, decode_snapshot, encode_batch, encode_head, encode_snapshot,
};
use agent_session::core::record::SCHEMA_VERSION;
use agent_session::core::{
    AgentState, Batch, CoreError, Event, Head, Interrupt, Lease, SessionState, Snapshot, SnapshotRef, Status,
};
use proptest::prelude::*;

use crate::fixtures::*;

const HEAD_KEY: &str = "h/some%2Fsession~";
const BATCH_KEY: &str = "e/some%2Fsession~/000000000000012d/000000000000004d";
const SNAPSHOT_KEY: &str = "s/some%2Fsession~/00000000000000fa/0000000000000046";
const SEGMENT_KEY: &str = "g/some%2Fsession~/00000000000000fa/0000000000000046";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Head,
    Batch,
    Snapshot,
    Segment,
}

const KINDS: [Kind; 4] = [Kind::Head, Kind::Batch, Kind::Snapshot, Kind::Segment];

fn key_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Head => HEAD_KEY,
        Kind::Batch => BATCH_KEY,
        Kind::Snapshot => SNAPSHOT_KEY,
        Kind::Segment => SEGMENT_KEY,
    }
}

/// Decodes `bytes` as `kind`; `Ok(())` when it decoded, otherwise the error.
fn decode(kind: Kind, bytes: &[u8]) -> Result<(), CoreError> {
    let key = key_of(kind);
    match kind {
        Kind::Head => decode_head(key, bytes).map(drop),
        Kind::Batch => decode_batch(key, bytes).map(drop),
        Kind::Snapshot => decode_snapshot(key, bytes).map(drop),
        Kind::Segment => agent_session::core::codec::decode_segment(key, bytes).map(drop),
    }
}

/// Asserts that decoding `bytes` as `kind` is refused with `CorruptRecord` naming the key.
#[track_caller]
fn assert_corrupt(kind: Kind, bytes: &[u8], context: &str) -> String {
    match decode(kind, bytes) {
        Err(CoreError::CorruptRecord { key, detail }) => {
            assert_eq!(key, key_of(kind), "{context}");
            assert!(!detail.is_empty(), "{context}");
            detail
        }
        other => panic!("{context}: expected CorruptRecord for {kind:?}, got {other:?}"),
    }
}

/// Asserts that decoding never panics and, when it refuses, refuses with `CorruptRecord` naming the key.
#[track_caller]
fn assert_decodes_or_corrupt(kind: Kind, bytes: &[u8]) {
    if let Err(error) = decode(kind, bytes) {
        match error {
            CoreError::CorruptRecord { key, .. } => assert_eq!(key, key_of(kind)),
            other => panic!("expected CorruptRecord, got {other:?}"),
        }
    }
}

/// Valid records of every kind, small and large.
fn valid_records() -> Vec<(Kind, Vec<u8>)> {
    vec![
        (Kind::Head, encode_head(&full_head())),
        (Kind::Head, encode_head(&minimal_head())),
        (Kind::Batch, encode_batch(&full_batch())),
        (Kind::Batch, encode_batch(&empty_batch())),
        (Kind::Snapshot, encode_snapshot(&full_snapshot())),
        (Kind::Snapshot, encode_snapshot(&empty_snapshot())),
    ]
}

#[test]
fn test_crc_matches_the_standard_check_value_and_the_records() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    for (_, bytes) in valid_records() {
        assert_eq!(seal(unseal(&bytes)), bytes, "the test CRC must match the crate's");
    }
}

#[test]
fn the_crate_crc_matches_the_bitwise_one_at_every_length_and_alignment() {
    // The crate's CRC takes eight bytes a step and the rest one at a time: every remainder and
    // every start offset must give what the bitwise definition gives.
    let bytes: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for start in 0..9 {
        for end in start..bytes.len() {
            assert_eq!(checksum(&bytes[start..end]), crc32(&bytes[start..end]), "bytes {start}..{end}");
        }
    }
}

#[test]
fn frame_layout() {
    let bytes = encode_head(&minimal_head());
    assert_eq!(&bytes[..4], &[b'A', b'S', b'H', SCHEMA_VERSION]);
    assert_eq!(&encode_batch(&empty_batch())[..3], b"ASE");
    assert_eq!(&encode_snapshot(&empty_snapshot())[..3], b"ASS");
}

#[test]
fn head_round_trip() {
    for head in [full_head(), minimal_head()] {
        let bytes = encode_head(&head);
        assert_eq!(decode_head(HEAD_KEY, &bytes), Ok(head));
    }
    // Every status survives.
    for status in [Status::Idle, Status::Running, Status::Interrupted, Status::Closed, Status::Expired] {
        let head = Head { status, ..full_head() };
        assert_eq!(decode_head(HEAD_KEY, &encode_head(&head)).unwrap().status, status);
    }
}

#[test]
fn batch_round_trip_with_every_event_variant() {
    let batch = full_batch();
    let names: Vec<&str> = batch.events.iter().map(Event::type_name).collect();
    for name in ["message", "state.set", "state.delete", "interrupt", "resume", "closed", "forked"] {
        assert!(names.contains(&name), "fixture lacks {name}");
    }
    for batch in [batch, empty_batch()] {
        assert_eq!(decode_batch(BATCH_KEY, &encode_batch(&batch)), Ok(batch));
    }
    // One event per batch, so that a variant cannot hide behind a neighbour.
    for event in every_event() {
        let batch = Batch { events: vec![event], ..empty_batch() };
        assert_eq!(decode_batch(BATCH_KEY, &encode_batch(&batch)), Ok(batch));
    }
}

#[test]
fn snapshot_round_trip() {
    for snapshot in [full_snapshot(), empty_snapshot()] {
        assert_eq!(decode_snapshot(SNAPSHOT_KEY, &encode_snapshot(&snapshot)), Ok(snapshot));
    }
}

#[test]
fn extreme_integers_round_trip() {
    let head = Head {
        version: u64::MAX,
        last_token: u64::MAX,
        created_at: u64::MAX,
        updated_at: 0,
        commits: vec![0, 1, 127, 128, 16_383, 16_384, u64::MAX - 1, u64::MAX].into(),
        lease: Some(Lease {
            owner: String::new(),
            instance: String::new(),
            token: u64::MAX,
            expires_at: u64::MAX,
            invocation: String::new(),
        }),
        snapshot: Some(SnapshotRef { version: u64::MAX, token: 0 }),
        idle_ttl_ms: Some(0),
        max_lifetime_ms: Some(u64::MAX),
        interrupt: Some(Interrupt { reason: String::new(), payload: json("") }),
        ..minimal_head()
    };
    assert_eq!(decode_head(HEAD_KEY, &encode_head(&head)), Ok(head));
}

#[test]
fn every_truncation_is_corrupt() {
    for (kind, bytes) in valid_records() {
        for len in 0..bytes.len() {
            assert_corrupt(kind, &bytes[..len], &format!("{kind:?} truncated to {len} of {}", bytes.len()));
        }
    }
}

#[test]
fn every_single_bit_flip_is_corrupt() {
    for (kind, bytes) in valid_records() {
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                assert_corrupt(kind, &flipped, &format!("{kind:?} bit {bit} of byte {at} flipped"));
            }
        }
    }
}

#[test]
fn appended_bytes_are_corrupt() {
    for (kind, bytes) in valid_records() {
        let mut longer = bytes.clone();
        longer.push(0);
        assert_corrupt(kind, &longer, "a byte appended after the checksum");
        // Trailing bytes inside a correctly sealed frame are refused too.
        let mut body = unseal(&bytes);
        body.push(0);
        let detail = assert_corrupt(kind, &seal(body), "a byte appended before the checksum");
        assert!(detail.contains("trailing"), "{detail}");
    }
}

#[test]
fn a_newer_schema_is_refused_by_name() {
    for (kind, bytes) in valid_records() {
        for schema in [SCHEMA_VERSION + 1, 200, u8::MAX] {
            let mut body = unseal(&bytes);
            body[3] = schema;
            let detail = assert_corrupt(kind, &seal(body), "newer schema");
            assert!(detail.contains(&format!("schema {schema}")), "{detail}");
            assert!(detail.contains("newer"), "{detail}");
        }
        let mut body = unseal(&bytes);
        body[3] = 0;
        let detail = assert_corrupt(kind, &seal(body), "schema 0");
        assert!(detail.contains("schema"), "{detail}");
    }
}

#[test]
fn a_record_of_another_kind_is_refused() {
    for (kind, bytes) in valid_records() {
        for other in KINDS {
            if other != kind {
                let detail = assert_corrupt(other, &bytes, &format!("{kind:?} read as {other:?}"));
                assert!(detail.contains("kind"), "{detail}");
            }
        }
    }
}

/// Hand-built bodies behind a valid frame and checksum: each one breaks one rule of the body parser.
#[test]
fn malformed_bodies_behind_a_valid_checksum() {
    let frame = |kind: u8, body: &[u8]| {
        let mut bytes = vec![b'A', b'S', kind, SCHEMA_VERSION];
        bytes.extend_from_slice(body);
        seal(bytes)
    };
    let cases: Vec<(Kind, Vec<u8>, &str)> = vec![
        (Kind::Head, frame(b'H', &[]), "empty head body"),
        (Kind::Head, frame(b'H', &[0, 9]), "unknown status"),
        (Kind::Head, frame(b'H', &[0, 0, 2]), "bad option tag"),
        (Kind::Head, frame(b'H', &[0xFF; 11]), "varint longer than 64 bits"),
        (
            Kind::Head,
            frame(b'H', &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]),
            "varint overflow in the last byte",
        ),
        (Kind::Head, frame(b'H', &[0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x01]), "string length past the end"),
        (Kind::Head, frame(b'H', &[0, 0, 1, 2, 0xC3, 0x28]), "invalid UTF-8 in the owner"),
        (Kind::Head, frame(b'H', &[0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]), "commit count far past the end"),
        (Kind::Batch, frame(b'E', &[1, 1, 0, 0, 0, 1, 99]), "unknown event type"),
        (
            Kind::Batch,
            frame(b'E', &[1, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            "event count of 2^64-1",
        ),
        (Kind::Batch, frame(b'E', &[1, 1, 0, 0, 0, 2, 6]), "fewer events than counted"),
        (Kind::Snapshot, frame(b'S', &[1, 1, 0, 0, 1, 1, b'a', 0, 0xFF, 0x7F]), "state count past the end"),
        (Kind::Snapshot, frame(b'S', &[1, 1, 3]), "bad option tag in previous"),
    ];
    for (kind, bytes, what) in cases {
        assert_corrupt(kind, &bytes, what);
    }
}

/// An integer that does not fit in 64 bits, in an otherwise valid record: refused, not wrapped.
#[test]
fn an_overlong_integer_in_a_valid_record_is_corrupt() {
    let body = unseal(&encode_head(&minimal_head()));
    assert_eq!(body[4], 0, "the version of a new head is the one-byte varint 0");
    let rest = &body[5..];
    for varint in [
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02][..],
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7E],
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
    ] {
        let mut bytes = body[..4].to_vec();
        bytes.extend_from_slice(varint);
        bytes.extend_from_slice(rest);
        let detail = assert_corrupt(Kind::Head, &seal(bytes), &format!("version {varint:02X?}"));
        assert!(detail.contains("overflow"), "{detail}");
    }
    // The largest value that fits is read back exactly.
    let mut bytes = body[..4].to_vec();
    bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    bytes.extend_from_slice(rest);
    assert_eq!(decode_head(HEAD_KEY, &seal(bytes)).unwrap().version, u64::MAX);
}

#[test]
fn short_and_foreign_bytes_are_corrupt() {
    for kind in KINDS {
        for bytes in [&b""[..], b"A", b"AS", b"ASH\x01", b"ASH\x01\0\0\0", b"{\"json\":true}", b"\0\0\0\0\0\0\0\0\0\0"]
        {
            assert_corrupt(kind, bytes, &format!("{bytes:?}"));
        }
    }
    // A sealed frame with the wrong magic.
    let mut body = unseal(&encode_head(&minimal_head()));
    body[0] = b'X';
    let detail = assert_corrupt(Kind::Head, &seal(body), "wrong magic");
    assert!(detail.contains("not an agent-session record"), "{detail}");
}

#[test]
fn the_error_names_the_key_in_its_message() {
    let error = decode_head("h/the-key~", b"garbage!").unwrap_err();
    assert_eq!(error.code(), "CORRUPT_RECORD");
    assert!(error.to_string().contains("\"h/the-key~\""), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Properties

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z/%~.]{0,6}", Just(String::new())]
}

fn json_text() -> impl Strategy<Value = Rc<str>> {
    text().prop_map(|s| Rc::from(s.as_str()))
}

fn small_u64() -> impl Strategy<Value = u64> {
    prop_oneof![0..300u64, any::<u64>()]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Idle),
        Just(Status::Running),
        Just(Status::Interrupted),
        Just(Status::Closed),
        Just(Status::Expired)
    ]
}

fn snapshot_ref() -> impl Strategy<Value = SnapshotRef> {
    (small_u64(), small_u64()).prop_map(|(version, token)| SnapshotRef { version, token })
}

fn lease() -> impl Strategy<Value = Lease> {
    (text(), text(), small_u64(), small_u64()).prop_map(|(owner, instance, token, expires_at)| Lease {
        owner,
        instance,
        token,
        expires_at,
        invocation: String::new(),
    })
}

fn head() -> impl Strategy<Value = Head> {
    (
        (small_u64(), status(), proptest::option::of(lease()), small_u64(), proptest::option::of(snapshot_ref())),
        (proptest::collection::vec(small_u64(), 0..8), small_u64(), small_u64()),
        (
            proptest::option::of(small_u64()),
            proptest::option::of(small_u64()),
            proptest::option::of((text(), json_text())),
            proptest::option::of(json_text()),
        ),
    )
        .prop_map(
            |(
                (version, status, lease, last_token, snapshot),
                (commits, created_at, updated_at),
                (idle, max, interrupt, metadata),
            )| Head {
                // A head names the token of each commit after its snapshot: never more than versions.
                version: version.max(commits.len() as u64),
                status,
                lease,
                last_token,
                snapshot,
                commits: commits.into(),
                created_at,
                updated_at,
                idle_ttl_ms: idle,
                max_lifetime_ms: max,
                interrupt: interrupt.map(|(reason, payload)| Interrupt { reason, payload }),
                metadata,
                stop: None,
                ended: None,
                retained: 0,
                schema: 0,
            },
        )
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (text(), json_text()).prop_map(|(agent, data)| Event::Message { agent, data }),
        (text(), text(), json_text()).prop_map(|(agent, key, data)| Event::StateSet { agent, key, data }),
        (text(), text()).prop_map(|(agent, key)| Event::StateDelete { agent, key }),
        (text(), json_text()).prop_map(|(reason, data)| Event::Interrupt { reason, data }),
        json_text().prop_map(|data| Event::Resume { data }),
        Just(Event::Closed),
        json_text().prop_map(|data| Event::Forked { data }),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        small_u64(),
        small_u64(),
        small_u64(),
        text(),
        proptest::option::of(text()),
        proptest::collection::vec(event(), 0..8),
    )
        .prop_map(|(version, token, at, invocation, traceparent, events)| Batch {
            version,
            token,
            at,
            invocation,
            traceparent,
            events,
        })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let agent_state =
        (proptest::collection::vec(json_text(), 0..4), proptest::collection::btree_map(text(), json_text(), 0..4))
            .prop_map(|(messages, state)| AgentState { messages, state, compactions: 0 });
    (
        small_u64(),
        small_u64(),
        proptest::option::of(snapshot_ref()),
        proptest::collection::vec(small_u64(), 0..6),
        proptest::collection::btree_map(text(), agent_state, 0..4),
    )
        .prop_map(
            |(version, token, previous, commits, agents): (
                u64,
                u64,
                Option<SnapshotRef>,
                Vec<u64>,
                BTreeMap<String, AgentState>,
            )| Snapshot {
                version,
                token,
                previous,
                commits: commits.into(),
                segments: Vec::new(),
                counts: Vec::new(),
                state: SessionState { agents },
                layers: None,
            },
        )
}

/// A segment: messages of some agents and, or not, a state layer of set and delete events.
fn segment() -> impl Strategy<Value = agent_session::core::Segment> {
    let state_event = prop_oneof![
        (text(), text(), json_text()).prop_map(|(agent, key, data)| Event::StateSet { agent, key, data }),
        (text(), text()).prop_map(|(agent, key)| Event::StateDelete { agent, key }),
    ];
    let layer = (any::<bool>(), proptest::collection::vec(state_event, 0..5))
        .prop_map(|(full, events)| agent_session::core::StateLayer { full, events });
    (
        small_u64(),
        small_u64(),
        proptest::collection::vec((text(), proptest::collection::vec(json_text(), 0..4)), 0..3),
        proptest::option::of(layer),
    )
        .prop_map(|(version, token, agents, state)| agent_session::core::Segment { version, token, agents, state })
}

/// A valid record of any kind, encoded.
fn any_record() -> impl Strategy<Value = (Kind, Vec<u8>)> {
    prop_oneof![
        head().prop_map(|h| (Kind::Head, encode_head(&h))),
        batch().prop_map(|b| (Kind::Batch, encode_batch(&b))),
        snapshot().prop_map(|s| (Kind::Snapshot, encode_snapshot(&s))),
        segment().prop_map(|g| (Kind::Segment, agent_session::core::codec::encode_segment(&g))),
        snapshot().prop_map(|s| {
            let layers = Some(agent_session::core::Layers { from: 0, bytes: s.version });
            (Kind::Snapshot, agent_session::core::codec::encode_segmented_snapshot(&Snapshot { layers, ..s }))
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_head_round_trips(head in head()) {
        prop_assert_eq!(decode_head(HEAD_KEY, &encode_head(&head)), Ok(head));
    }

    #[test]
    fn any_batch_round_trips(batch in batch()) {
        prop_assert_eq!(decode_batch(BATCH_KEY, &encode_batch(&batch)), Ok(batch));
    }

    #[test]
    fn any_snapshot_round_trips(snapshot in snapshot()) {
        prop_assert_eq!(decode_snapshot(SNAPSHOT_KEY, &encode_snapshot(&snapshot)), Ok(snapshot));
    }

    /// Random bytes: never a panic, always `CorruptRecord` naming the key (they cannot carry a valid
    /// checksum except by a 2^-32 accident, and the magic makes even that one refused).
    #[test]
    fn random_bytes_are_corrupt(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for kind in KINDS {
            let mut with_magic = bytes.clone();
            if with_magic.len() >= 2 {
                with_magic[..2].copy_from_slice(b"AS");
            }
            for candidate in [&bytes, &with_magic] {
                match decode(kind, candidate) {
                    Err(CoreError::CorruptRecord { key, .. }) => prop_assert_eq!(key, key_of(kind)),
                    other => prop_assert!(false, "random bytes gave {:?}", other),
                }
            }
        }
    }

    /// Random bodies behind a valid frame and checksum reach the body parser: it must never panic
    /// (no slice past the end, no huge allocation, no overflow) and refuse with the key.
    #[test]
    fn sealed_random_bodies_never_panic(kind_index in 0..6usize, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Every layout of every kind: snapshots inline (S), segmented (T) and layered (U).
        let (kind, byte) = [
            (Kind::Head, b'H'), (Kind::Batch, b'E'), (Kind::Snapshot, b'S'),
            (Kind::Snapshot, b'T'), (Kind::Snapshot, b'U'), (Kind::Segment, b'G'),
        ][kind_index];
        let mut bytes = vec![b'A', b'S', byte, SCHEMA_VERSION];
        bytes.extend_from_slice(&body);
        assert_decodes_or_corrupt(kind, &seal(bytes));
    }

    /// Valid records edited inside the body (bytes overwritten, removed or inserted) and sealed again:
    /// the parser sees plausible but wrong structure and must still refuse cleanly.
    #[test]
    fn sealed_mutations_of_valid_records_never_panic(
        (kind, bytes) in any_record(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let mut body = unseal(&bytes);
        for (at, value, how) in edits {
            // Leave magic, kind and schema alone so that the body parser is what gets exercised.
            let len = body.len() - 4;
            match how {
                0 if len > 0 => { let i = 4 + at.index(len); body[i] = value; }
                1 if len > 0 => { body.remove(4 + at.index(len)); }
                _ => { let i = 4 + at.index(len + 1); body.insert(i, value); }
            }
        }
        assert_decodes_or_corrupt(kind, &seal(body));
    }

    /// Every truncation of a random valid record is refused (not only of the fixtures).
    #[test]
    fn truncations_of_any_record_are_corrupt((kind, bytes) in any_record(), cut in any::<prop::sample::Index>()) {
        let len = cut.index(bytes.len());
        match decode(kind, &bytes[..len]) {
            Err(CoreError::CorruptRecord { key, .. }) => prop_assert_eq!(key, key_of(kind)),
            other => prop_assert!(false, "truncated record gave {:?}", other),
        }
    }
}

#[test]
fn one_varint_both_ways() {
    use agent_session::core::codec::{read_varint, write_varint};
    for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
        let mut bytes = Vec::new();
        write_varint(&mut bytes, value);
        let mut at = 0;
        assert_eq!(read_varint(&bytes, &mut at), Ok(value));
        assert_eq!(at, bytes.len());
        let mut at = 0;
        assert_eq!(read_varint(&bytes[..bytes.len() - 1], &mut at), Err("truncated"));
    }
    let mut at = 0;
    assert_eq!(read_varint(&[0xff; 10], &mut at), Err("integer overflow"));
    let mut at = 0;
    assert_eq!(
        read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], &mut at),
        Err("integer overflow")
    );
}

/// The full snapshot fixture with its messages in two segments.
fn segmented_snapshot() -> Snapshot {
    let mut snapshot = full_snapshot();
    snapshot.segments = vec![SnapshotRef { version: 50, token: 9 }, SnapshotRef { version: 250, token: 70 }];
    snapshot.counts = vec![("default".to_owned(), 2), ("empty".to_owned(), 0)];
    snapshot
}

#[test]
fn segmented_snapshots_and_segments_round_trip_and_refuse_corruption() {
    use agent_session::core::codec::{decode_segment, encode_segment, encode_segmented_snapshot};
    use agent_session::core::Segment;
    let snapshot = segmented_snapshot();
    let bytes = encode_segmented_snapshot(&snapshot);
    assert_eq!(&bytes[..3], b"AST");
    let decoded = decode_snapshot(SNAPSHOT_KEY, &bytes).unwrap();
    // The messages are not in it: the segments hold them.
    let mut without_messages = snapshot.clone();
    for agent in without_messages.state.agents.values_mut() {
        agent.messages.clear();
    }
    assert_eq!(decoded, without_messages);
    let segment = Segment {
        version: 250,
        token: 70,
        agents: vec![("default".into(), vec![json("1"), json("\"é\"")])],
        state: None,
    };
    let encoded = encode_segment(&segment);
    assert_eq!(decode_segment("g/x~/1/1", &encoded), Ok(segment));
    for cut in 0..encoded.len() {
        assert!(decode_segment("g/x~/1/1", &encoded[..cut]).is_err());
    }
    assert!(decode_segment("g/x~/1/1", &bytes).is_err(), "a snapshot is not a segment");
}

#[test]
fn layered_snapshots_and_segments_with_state_layers_round_trip_and_refuse_corruption() {
    use agent_session::core::codec::{decode_segment, encode_segment, encode_segmented_snapshot};
    use agent_session::core::{Layers, Segment, StateLayer};
    let mut snapshot = segmented_snapshot();
    snapshot.state.agents.get_mut("default").unwrap().compactions = 3;
    snapshot.layers = Some(Layers { from: 1, bytes: 12345 });
    let bytes = encode_segmented_snapshot(&snapshot);
    assert_eq!(&bytes[..3], b"ASU");
    let decoded = decode_snapshot(SNAPSHOT_KEY, &bytes).unwrap();
    // Neither the messages nor the values are in it: the segments and their layers hold them.
    let mut bare = snapshot.clone();
    for agent in bare.state.agents.values_mut() {
        agent.messages.clear();
        agent.state.clear();
    }
    assert_eq!(decoded, bare);
    for cut in 0..bytes.len() {
        assert!(decode_snapshot(SNAPSHOT_KEY, &bytes[..cut]).is_err());
    }
    // Layers that would start past the segments are refused.
    let past = encode_segmented_snapshot(&Snapshot { layers: Some(Layers { from: 3, bytes: 0 }), ..snapshot.clone() });
    assert!(decode_snapshot(SNAPSHOT_KEY, &past).is_err());

    let layer = StateLayer {
        full: false,
        events: vec![
            Event::StateSet { agent: "default".into(), key: "k".into(), data: json("1") },
            Event::StateDelete { agent: "default".into(), key: "gone".into() },
        ],
    };
    let segment = Segment { version: 250, token: 70, agents: vec![], state: Some(layer) };
    let encoded = encode_segment(&segment);
    assert_eq!(decode_segment("g/x~/1/1", &encoded), Ok(segment.clone()));
    let full = Segment { state: Some(StateLayer { full: true, events: vec![] }), ..segment.clone() };
    assert_eq!(decode_segment("g/x~/1/1", &encode_segment(&full)), Ok(full));
    // A layer holds state events only: a message in one is refused.
    let message = Event::Message { agent: "default".into(), data: json("1") };
    let odd = Segment { state: Some(StateLayer { full: false, events: vec![message] }), ..segment };
    assert!(decode_segment("g/x~/1/1", &encode_segment(&odd)).is_err());
    for cut in 0..encoded.len() {
        // A cut at the end of the messages is a segment of the second layout: its CRC says otherwise.
        assert!(decode_segment("g/x~/1/1", &encoded[..cut]).is_err());
    }
}
