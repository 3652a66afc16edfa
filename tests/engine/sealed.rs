//! Encryption at rest through the engine (src/store/sealed.rs) over the memory backend, with the
//! test cipher of tests/support/cipher.rs: nothing the application wrote is readable in the stored
//! bytes, everything reads back, a record moved or a key missing is `CorruptRecord` naming the key,
//! keys rotate, clear sessions stay readable, and a guard step costs no cryptography once warm.

use std::rc::Rc;

use agent_session::core::{keys, CoreError, Interrupt};
use agent_session::engine::{BeginOptions, Config, EngineError, OpenOptions, SessionStore};
use agent_session::store::{Expect, Store};

use crate::basics::{begin, j, texts, turn};
use crate::support::cipher::TestCipher;
use crate::support::*;

const MARKERS: [&str; 5] = ["MARK-message", "MARK-state", "MARK-metadata", "MARK-reason", "MARK-payload"];

fn config(owner: &str) -> Config {
    Config { snapshot_every: 3, ..World::config(owner) }
}

fn sealed(world: &World, owner: &str, keys: &[(&str, u64)], current: &str) -> (SessionStore, Rc<TestCipher>) {
    let (cipher, keyring) = TestCipher::new(keys, current);
    (world.sealed_store(config(owner), cipher.clone(), keyring), cipher)
}

fn open_with_metadata(store: &SessionStore, id: &str) -> Rc<agent_session::engine::Session> {
    let options = OpenOptions { create: true, metadata: Some(j("{\"user\":\"MARK-metadata\"}")), ..Default::default() };
    block_on(store.open(id, options)).expect("open")
}

/// A session with every kind of application data, snapshots and segments included, left interrupted.
fn write_everything(store: &SessionStore, id: &str) {
    let session = open_with_metadata(store, id);
    for n in 0..7 {
        let invocation = begin(&session);
        invocation.append_message(j(&format!("\"MARK-message {n}\"")), None).unwrap();
        invocation.set_state("k", j("\"MARK-state\""), None).unwrap();
        block_on(invocation.commit()).unwrap();
    }
    let invocation = begin(&session);
    block_on(invocation.interrupt("MARK-reason".into(), Some(j("{\"ask\":\"MARK-payload\"}")))).unwrap();
}

fn raw_text(world: &World) -> String {
    world.dump().iter().map(|(key, bytes)| format!("{key}={}\n", String::from_utf8_lossy(bytes))).collect()
}

fn reopened(store: &SessionStore, id: &str) -> Rc<agent_session::engine::Session> {
    block_on(store.open(id, OpenOptions::default())).expect("reopen")
}

/// The error an open that must fail gave.
fn refused(
    opening: impl std::future::Future<Output = Result<Rc<agent_session::engine::Session>, EngineError>>,
) -> EngineError {
    match block_on(opening) {
        Ok(_) => panic!("the open succeeded"),
        Err(error) => error,
    }
}

fn corrupt_key(error: EngineError) -> (String, String) {
    match error {
        EngineError::Core(CoreError::CorruptRecord { key, detail }) => (key, detail),
        EngineError::Store(agent_session::store::StoreError::Corrupt { key, detail }) => (key, detail),
        other => panic!("expected a corrupt record, got {other:?}"),
    }
}

#[test]
fn nothing_the_application_wrote_is_stored_readable_and_everything_reads_back() {
    let clear_world = World::new();
    write_everything(&clear_world.store_with(config("clear"), 0), "s");
    let control = raw_text(&clear_world);
    assert!(MARKERS.iter().all(|m| control.contains(m)), "the dump shows a clear session's data");

    let world = World::new();
    let (store, _) = sealed(&world, "a", &[("default", 7)], "default");
    write_everything(&store, "s");
    let dump = raw_text(&world);
    for marker in MARKERS {
        assert!(!dump.contains(marker), "{marker} is stored readable:\n{dump}");
    }
    assert!(world.dump().iter().any(|(key, _)| key.starts_with("g/")), "segments were written");
    // A sealed snapshot names its segments readable (a load reads them with it, in one go).
    for (key, bytes) in world.dump().iter().filter(|(key, _)| key.starts_with("s/")) {
        let segments = agent_session::core::codec::snapshot_segments(key, bytes).expect("readable segments");
        let named: Vec<String> = segments.iter().map(|at| keys::segment_key("s", at.version, at.token)).collect();
        assert!(
            !named.is_empty() && named.iter().all(|segment| world.dump().iter().any(|(k, _)| k == segment)),
            "{named:?}"
        );
    }

    let (other, _) = sealed(&world, "b", &[("default", 7)], "default");
    let session = reopened(&other, "s");
    let messages = texts(&session.messages(None).unwrap());
    assert_eq!(messages, (0..7).map(|n| format!("\"MARK-message {n}\"")).collect::<Vec<_>>());
    assert_eq!(session.value(None, "k").unwrap().as_deref(), Some("\"MARK-state\""));
    assert_eq!(session.head().metadata.as_deref(), Some("{\"user\":\"MARK-metadata\"}"));
    let expected = Interrupt { reason: "MARK-reason".into(), payload: j("{\"ask\":\"MARK-payload\"}") };
    assert_eq!(session.pending_interrupt(), Some(expected));
    let resumed = block_on(session.begin(BeginOptions { resume: Some(j("\"yes\"")), ..Default::default() })).unwrap();
    block_on(resumed.commit()).unwrap();
    assert_eq!(
        block_on(session.history(None, None)).unwrap().len(),
        1 + 7 * 2 + 2,
        "created, 7 turns, interrupt, resume"
    );
}

#[test]
fn a_store_without_the_key_or_with_another_is_refused_naming_the_record() {
    let world = World::new();
    let (store, _) = sealed(&world, "a", &[("k1", 7)], "k1");
    write_everything(&store, "s");
    let head_key = keys::head_key("s");
    let (key, detail) = corrupt_key(refused(world.store("plain").open("s", OpenOptions::default())));
    assert_eq!(key, head_key);
    assert!(detail.contains("\"k1\""), "{detail}");
    let (wrong, _) = sealed(&world, "c", &[("k1", 8)], "k1");
    let (key, detail) = corrupt_key(refused(wrong.open("s", OpenOptions::default())));
    assert_eq!(key, head_key);
    assert!(detail.contains("\"k1\"") && detail.contains("does not decrypt"), "{detail}");
    let (unknown, _) = sealed(&world, "d", &[("k2", 7)], "k2");
    let (key, detail) = corrupt_key(refused(unknown.open("s", OpenOptions::default())));
    assert_eq!(key, head_key);
    assert!(detail.contains("\"k1\"") && detail.contains("does not have"), "{detail}");
}

#[test]
fn a_record_copied_over_another_key_does_not_open() {
    let world = World::new();
    let (store, _) = sealed(&world, "a", &[("default", 7)], "default");
    let session = open_with_metadata(&store, "s");
    turn(&session, &["\"one\""]);
    turn(&session, &["\"two\""]);
    let batches: Vec<(String, Vec<u8>)> = world.dump().into_iter().filter(|(key, _)| key.starts_with("e/")).collect();
    assert_eq!(batches.len(), 2);
    // The first batch's bytes under the second batch's key.
    block_on(world.mem.put(&batches[1].0, batches[0].1.clone().into(), Expect::Any)).unwrap();
    let (fresh, _) = sealed(&world, "b", &[("default", 7)], "default");
    let (key, detail) = corrupt_key(refused(fresh.open("s", OpenOptions::default())));
    assert_eq!(key, batches[1].0);
    assert!(detail.contains("does not decrypt"), "{detail}");
}

#[test]
fn keys_rotate_old_records_read_new_ones_sealed_under_current() {
    let world = World::new();
    let (old, _) = sealed(&world, "a", &[("k1", 7)], "k1");
    let session = open_with_metadata(&old, "s");
    turn(&session, &["\"old\""]);
    let (rotated, _) = sealed(&world, "b", &[("k1", 7), ("k2", 9)], "k2");
    let session = reopened(&rotated, "s");
    assert_eq!(texts(&session.messages(None).unwrap()), ["\"old\""]);
    turn(&session, &["\"new\""]);
    let newest = world.dump().into_iter().rfind(|(key, _)| key.starts_with("e/")).unwrap();
    assert!(String::from_utf8_lossy(&newest.1).contains("k2"), "the new batch names key k2");
    // Only k2: the new records and the head open, the old batch does not.
    let (only_new, _) = sealed(&world, "c", &[("k2", 9)], "k2");
    let (key, detail) = corrupt_key(refused(only_new.open("s", OpenOptions::default())));
    assert!(key.starts_with("e/"), "the old batch is named: {key}");
    assert!(detail.contains("\"k1\""), "{detail}");
}

#[test]
fn a_store_that_turns_encryption_on_reads_clear_records_and_seals_what_it_writes() {
    let world = World::new();
    let plain = world.store("plain");
    let session = block_on(
        plain.open("s", OpenOptions { create: true, metadata: Some(j("\"MARK-old\"")), ..Default::default() }),
    )
    .unwrap();
    turn(&session, &["\"MARK-clear\""]);
    let (store, _) = sealed(&world, "a", &[("default", 7)], "default");
    let session = reopened(&store, "s");
    turn(&session, &["\"MARK-sealed\""]);
    let dump = raw_text(&world);
    assert!(dump.contains("MARK-clear"), "an old batch stays as written until pruned");
    assert!(!dump.contains("MARK-sealed") && !dump.contains("MARK-old"), "new batch and rewritten head are sealed");
    assert_eq!(
        texts(&reopened(&sealed(&world, "b", &[("default", 7)], "default").0, "s").messages(None).unwrap()),
        ["\"MARK-clear\"", "\"MARK-sealed\""]
    );
}

#[test]
fn a_prune_at_the_latest_version_leaves_nothing_under_a_retired_key_or_in_the_clear() {
    let world = World::new();
    let plain = world.store("plain");
    let session = block_on(plain.open("s", OpenOptions { create: true, ..Default::default() })).unwrap();
    for n in 0..7 {
        turn(&session, &[&format!("\"MARK-clear {n}\"")]);
    }
    let (old, _) = sealed(&world, "a", &[("k1", 7)], "k1");
    let session = reopened(&old, "s");
    for n in 0..7 {
        turn(&session, &[&format!("\"k1 {n}\"")]);
    }
    let (rotated, _) = sealed(&world, "b", &[("k1", 7), ("k2", 9)], "k2");
    let session = reopened(&rotated, "s");
    turn(&session, &["\"k2\""]);
    let latest = session.version();
    let messages = texts(&session.messages(None).unwrap());
    let history = block_on(session.history(Some(latest), None)).unwrap();
    // Segments written under k1 and in the clear by the snapshots before: a prune below the latest
    // version keeps those a kept snapshot names.
    assert!(raw_text(&world).contains("MARK-clear"));
    assert!(block_on(session.prune(latest)).unwrap() > 0);
    assert!(!raw_text(&world).contains("MARK-clear"), "nothing is left in the clear");
    let versions: Vec<u64> =
        world.dump().iter().filter_map(|(key, _)| keys::parse_record_key(key).map(|(_, version, _)| version)).collect();
    assert!(versions.iter().all(|version| *version == latest), "only records of the latest version: {versions:?}");
    // A store with k2 alone reads the session whole.
    let (only_new, _) = sealed(&world, "c", &[("k2", 9)], "k2");
    let fresh = reopened(&only_new, "s");
    assert_eq!(texts(&fresh.messages(None).unwrap()), messages);
    assert_eq!(block_on(fresh.history(Some(latest), None)).unwrap(), history);
    turn(&fresh, &["\"after\""]);
    // Again at the latest version, already a snapshot: the prune's own replaces it (one of each).
    let latest = fresh.version();
    let kept_history = block_on(fresh.history(Some(latest), None)).unwrap();
    block_on(fresh.prune(latest)).unwrap();
    block_on(fresh.prune(latest)).unwrap();
    let kinds: Vec<char> =
        world.dump().iter().filter_map(|(key, _)| keys::parse_record_key(key).map(|(kind, _, _)| kind)).collect();
    assert_eq!(kinds.iter().filter(|kind| **kind == 's').count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|kind| **kind == 'g').count(), 1, "{kinds:?}");
    let reader = reopened(&sealed(&world, "d", &[("k2", 9)], "k2").0, "s");
    assert_eq!(texts(&reader.messages(None).unwrap()).len(), messages.len() + 1);
    assert_eq!(block_on(reader.history(Some(latest), None)).unwrap(), kept_history, "the batch of the kept version");
}

#[test]
fn a_warm_guard_step_costs_no_cryptography_and_a_cold_one_opens_outside_the_transaction() {
    let world = World::new();
    let (a, a_cipher) = sealed(&world, "a", &[("default", 7)], "default");
    let session = open_with_metadata(&a, "s");
    turn(&session, &["\"1\""]);
    let before = a_cipher.calls.get();
    let invocation = begin(&session);
    assert_eq!(a_cipher.calls.get(), before, "begin on a head this store sealed: no cipher call");
    block_on(invocation.commit()).unwrap();
    assert_eq!(a_cipher.calls.get(), before + 1, "the commit seals its batch only (the head's fields are known)");
    // Another store meets a sealed field new to it inside its guard step (its view evicted, so the
    // step decides on the stored head): it keeps the head, opens the field, and decides again.
    let (b, b_cipher) = sealed(&world, "b", &[("default", 7)], "default");
    let session_b = block_on(b.open("s", OpenOptions::default())).unwrap();
    session_b.dispose();
    let invocation = begin(&session);
    block_on(invocation.interrupt("MARK-reason".into(), Some(j("1")))).unwrap();
    let before = b_cipher.calls.get();
    let resumed = block_on(session_b.begin(BeginOptions { resume: Some(j("2")), ..Default::default() })).unwrap();
    assert!(b_cipher.calls.get() > before, "the new field (and the evicted state) opened before deciding");
    block_on(resumed.commit()).unwrap();
    assert_eq!(world.head("s").version, 4);
    let history = block_on(session_b.history(Some(3), None)).unwrap();
    let events: Vec<_> = history.iter().filter_map(|event| event.event.clone()).collect();
    assert!(
        matches!(&events[..], [agent_session::core::Event::Interrupt { reason, .. }, agent_session::core::Event::Resume { data }]
            if reason == "MARK-reason" && &**data == "2"),
        "{events:?}"
    );
}

#[test]
fn a_stop_request_keeps_its_token_and_owner_readable_and_its_reason_sealed() {
    use agent_session::core::{codec, Head, StopRequest};
    use agent_session::store::SealedStore;
    let world = World::new();
    let (cipher, keyring) = TestCipher::new(&[("default", 7)], "default");
    let store = SealedStore::new(world.mem.clone(), cipher, keyring);
    let key = keys::head_key("s");
    let mut head = Head::new(1, None, None, Some(j("\"MARK-metadata\"")));
    head.stop = Some(StopRequest { token: 42, reason: "MARK-stop".into(), by: "owner-b".into(), at: 5 });
    block_on(store.put(&key, codec::encode_head(&head).into(), Expect::Absent)).unwrap();
    let dump = raw_text(&world);
    assert!(!dump.contains("MARK-stop") && !dump.contains("MARK-metadata"), "{dump}");
    let stored = world.head("s").stop.expect("the stop request is there");
    assert_eq!((stored.token, stored.by.as_str(), stored.at), (42, "owner-b", 5), "guard fields readable");
    let read = block_on(store.get(&key)).unwrap().unwrap();
    assert_eq!(codec::decode_head(&key, &read.value).unwrap(), head);
}
