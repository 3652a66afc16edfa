//! Records used across the core tests, and a test-side CRC-32 so that bytes can be edited and
//! re-sealed (only then does a test reach the decoder's body parser instead of the checksum).

use std::collections::BTreeMap;
use std::rc::Rc;

use agent_session::core::guard::Holder;
use agent_session::core::{
    AgentState, Batch, Event, Head, Interrupt, Json, Lease, SessionState, Snapshot, SnapshotRef, Status, StopRequest,
    TurnEnd, TurnOutcome,
};

pub const LEASE_MS: u64 = 1_000;
pub const T0: u64 = 1_700_000_000_000;

pub fn json(text: &str) -> Json {
    Rc::from(text)
}

pub fn holder(owner: &'static str) -> Holder<'static> {
    Holder { owner, instance: "instance-of-this-test", invocation: "invocation-of-this-test" }
}

/// A head with every optional field set.
pub fn full_head() -> Head {
    Head {
        version: 300,
        status: Status::Running,
        lease: Some(Lease {
            owner: "worker é/1".into(),
            instance: "AbC-_09".into(),
            token: 77,
            expires_at: T0 + 5_000,
            invocation: "inv-77".into(),
        }),
        last_token: 77,
        snapshot: Some(SnapshotRef { version: 250, token: 70 }),
        commits: (0..50).map(|i| 70 + i / 10).collect(),
        created_at: T0 - 86_400_000,
        updated_at: T0,
        idle_ttl_ms: Some(3_600_000),
        max_lifetime_ms: Some(u64::MAX),
        interrupt: Some(Interrupt {
            reason: "approve the transfer?".into(),
            payload: json(r#"{"amount":12.5,"to":"Zoë"}"#),
        }),
        metadata: Some(json(r#"{"user":"u-1","tags":["a","b"]}"#)),
        stop: Some(StopRequest { token: 77, reason: "user pressed stop".into(), by: "tab é".into(), at: T0 + 1 }),
        ended: Some(TurnEnd { token: 76, outcome: TurnOutcome::Fenced, invocation: "inv-76".into(), flushes: None }),
        retained: 120,
        schema: 3,
    }
}

pub fn minimal_head() -> Head {
    Head::new(0, None, None, None)
}

/// Every `Event` variant, with empty, non-ASCII and control-character strings.
pub fn every_event() -> Vec<Event> {
    vec![
        Event::Message { agent: "default".into(), data: json(r#"{"role":"user","content":"hello"}"#) },
        Event::Message { agent: "".into(), data: json("") },
        Event::StateSet { agent: "planner".into(), key: "plan/step\u{0}1".into(), data: json("[1,2,3]") },
        Event::StateDelete { agent: "planner".into(), key: "old".into() },
        Event::Interrupt { reason: "needs approval ✅".into(), data: json("null") },
        Event::Resume { data: json(r#""yes""#) },
        Event::Closed,
        Event::Forked { data: json(r#"{"from":"a/b%c","version":3}"#) },
        Event::Compacted { agent: "planner".into(), before: 12, summary: vec![json(r#"{"role":"system"}"#), json("")] },
        Event::Migrated {
            agent: "default".into(),
            from: 1,
            to: 3,
            messages: vec![json(r#"{"v":3}"#)],
            state: [("k".to_owned(), json("null"))].into_iter().collect(),
        },
        Event::Stopped { reason: "user pressed stop ⏹".into(), by: "tab\u{0}2".into(), outcome: TurnOutcome::Fenced },
    ]
}

pub fn full_batch() -> Batch {
    Batch {
        version: 301,
        token: 77,
        at: T0 + 10,
        invocation: "inv-0123456789abcdefghij".into(),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        events: every_event(),
    }
}

pub fn empty_batch() -> Batch {
    Batch { version: 1, token: 1, at: 0, invocation: String::new(), traceparent: None, events: Vec::new() }
}

pub fn full_snapshot() -> Snapshot {
    let mut agents = BTreeMap::new();
    agents.insert(
        "default".to_owned(),
        AgentState {
            messages: vec![json(r#"{"role":"user","content":"日本語"}"#), json("{}")],
            state: [("k".to_owned(), json("1")), ("ключ".to_owned(), json(r#""v""#))].into_iter().collect(),
            compactions: 0,
        },
    );
    agents.insert("empty".to_owned(), AgentState::default());
    Snapshot {
        version: 250,
        token: 70,
        previous: Some(SnapshotRef { version: 200, token: 61 }),
        commits: vec![61, 61, 62, 63, 70].into(),
        segments: Vec::new(),
        counts: Vec::new(),
        state: SessionState { agents },
        layers: None,
    }
}

pub fn empty_snapshot() -> Snapshot {
    Snapshot {
        version: 1,
        token: 1,
        previous: None,
        commits: vec![1].into(),
        segments: Vec::new(),
        counts: Vec::new(),
        state: SessionState::default(),
        layers: None,
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib), written independently of the crate's.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    crc ^ 0xFFFF_FFFF
}

/// `body` (everything a frame holds before its checksum) with a correct checksum appended.
pub fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// The record without its checksum.
pub fn unseal(record: &[u8]) -> Vec<u8> {
    record[..record.len() - 4].to_vec()
}
