//! The `Store` contract, written once: every backend runs these same cases (memory natively in
//! tests/store.rs and in wasm; IndexedDB in a Chromium window and a dedicated worker). A new backend
//! brings a constructor, not tests.

use agent_session::core::keys;
use agent_session::store::{Decide, Decision, Expect, Store};

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

async fn value(store: &dyn Store, key: &str) -> Option<Vec<u8>> {
    store.get(key).await.unwrap().map(|entry| entry.value)
}

pub async fn get_of_a_missing_key_is_none(store: &dyn Store) {
    assert_eq!(store.get("h/missing~").await.unwrap(), None);
}

pub async fn put_then_get_round_trips_any_bytes(store: &dyn Store) {
    let all: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    let version = store.put("e/a~/1", all.clone().into(), Expect::Any).await.unwrap().expect("Any always writes");
    let entry = store.get("e/a~/1").await.unwrap().unwrap();
    assert_eq!(entry.value, all);
    assert_eq!(entry.version, version);
    let large = vec![7u8; 300 * 1024];
    store.put("e/a~/2", large.clone().into(), Expect::Any).await.unwrap();
    assert_eq!(value(store, "e/a~/2").await, Some(large));
}

pub async fn must_not_exist_refuses_an_existing_key_and_writes_nothing(store: &dyn Store) {
    assert!(store.put("h/a~", bytes("first").into(), Expect::Absent).await.unwrap().is_some());
    assert_eq!(store.put("h/a~", bytes("second").into(), Expect::Absent).await.unwrap(), None);
    assert_eq!(value(store, "h/a~").await, Some(bytes("first")));
}

pub async fn compare_and_set_needs_the_current_version(store: &dyn Store) {
    let v1 = store.put("h/a~", bytes("1").into(), Expect::Absent).await.unwrap().unwrap();
    let v2 = store.put("h/a~", bytes("2").into(), Expect::Version(v1.clone())).await.unwrap().unwrap();
    assert_ne!(v1, v2, "every write changes the version");
    assert_eq!(store.put("h/a~", bytes("stale").into(), Expect::Version(v1)).await.unwrap(), None);
    assert_eq!(value(store, "h/a~").await, Some(bytes("2")));
    assert_eq!(store.put("h/b~", bytes("x").into(), Expect::Version(v2)).await.unwrap(), None, "no key, no version");
    assert_eq!(store.get("h/b~").await.unwrap(), None);
}

pub async fn a_recreated_key_never_repeats_a_version(store: &dyn Store) {
    let first = store.put("h/a~", bytes("1").into(), Expect::Absent).await.unwrap().unwrap();
    assert!(store.delete("h/a~", None).await.unwrap());
    let second = store.put("h/a~", bytes("1").into(), Expect::Absent).await.unwrap().unwrap();
    assert_ne!(first, second);
    assert_eq!(store.put("h/a~", bytes("stale").into(), Expect::Version(first)).await.unwrap(), None);
}

pub async fn delete_checks_the_expected_version(store: &dyn Store) {
    let version = store.put("h/a~", bytes("1").into(), Expect::Any).await.unwrap().unwrap();
    assert!(!store.delete("h/a~", Some("not-the-version")).await.unwrap());
    assert!(store.get("h/a~").await.unwrap().is_some());
    assert!(store.delete("h/a~", Some(&version)).await.unwrap());
    assert!(!store.delete("h/a~", None).await.unwrap(), "deleting a missing key is false");
}

pub async fn list_is_by_prefix_in_order_and_pages_completely(store: &dyn Store) {
    for id in ["a", "a/b", "ab", "a%", "b", "a~", "\u{0}"] {
        store.put(&keys::head_key(id), bytes(id).into(), Expect::Any).await.unwrap();
    }
    store.put(&keys::batch_key("a", 1, 1), bytes("batch").into(), Expect::Any).await.unwrap();
    let exact = store.list(&keys::head_key("a"), None, 100).await.unwrap();
    assert_eq!(exact.keys, [keys::head_key("a")], "an escaped id is no other id's prefix");
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list(keys::HEAD_PREFIX, cursor.as_deref(), 2).await.unwrap();
        assert!(page.keys.len() <= 2);
        all.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "ascending order");
    let ids: Vec<String> = all.iter().filter_map(|key| keys::id_of_head_key(key)).collect();
    assert_eq!(ids.len(), 7, "every head once, no batch: {ids:?}");
    assert!(store.list("zzz/", None, 10).await.unwrap().keys.is_empty());
}

pub async fn commit_writes_records_and_head_only_at_the_expected_version(store: &dyn Store) {
    let v0 = store.put("h/s~", bytes("v0").into(), Expect::Absent).await.unwrap().unwrap();
    let records = vec![("e/s~/1/1".to_owned(), bytes("batch 1")), ("s/s~/1/1".to_owned(), bytes("snapshot 1"))];
    let v1 = store
        .commit(records, "h/s~", bytes("v1").into(), Expect::Version(v0.clone()), &mut Vec::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value(store, "e/s~/1/1").await, Some(bytes("batch 1")));
    assert_eq!(value(store, "s/s~/1/1").await, Some(bytes("snapshot 1")));
    assert_eq!(store.get("h/s~").await.unwrap().unwrap().version, v1);
    let stale = vec![("e/s~/2/9".to_owned(), bytes("stale"))];
    assert_eq!(
        store.commit(stale, "h/s~", bytes("stale head").into(), Expect::Version(v0), &mut Vec::new()).await.unwrap(),
        None
    );
    assert_eq!(value(store, "h/s~").await, Some(bytes("v1")), "a refused commit leaves the head");
    assert_eq!(value(store, "e/s~/1/1").await, Some(bytes("batch 1")), "and every record it named");
}

/// The stale live logs given to a commit: those it takes are deleted with it, whether or not the head is
/// written, and the caller deletes those it leaves (by their keys or by prefix); other live logs stay.
pub async fn commit_deletes_the_stale_live_logs_it_takes(store: &dyn Store) {
    let flush = |token, n| keys::live_key("s", token, n);
    for (token, n) in [(1, 0), (1, 1), (2, 0), (3, 0), (4, 0)] {
        store.put(&flush(token, n), bytes("part").into(), Expect::Absent).await.unwrap().unwrap();
    }
    let v0 = store.put("h/s~", bytes("v0").into(), Expect::Absent).await.unwrap().unwrap();
    let left_to_the_caller = |stale: Vec<(String, Vec<String>)>| async move {
        for (prefix, known) in stale {
            store.delete_prefix(&prefix, known).await.unwrap();
        }
    };
    let mut stale = vec![
        (keys::live_prefix("s", 1), vec![flush(1, 0), flush(1, 1)]),
        (keys::live_prefix("s", 2), Vec::new()), // keys not known: by prefix
    ];
    let records = vec![("e/s~/1/5".to_owned(), bytes("batch"))];
    let head = bytes("v1").into();
    let v1 = store.commit(records, "h/s~", head, Expect::Version(v0.clone()), &mut stale).await.unwrap();
    assert!(v1.is_some());
    left_to_the_caller(stale).await;
    for (token, n) in [(1, 0), (1, 1), (2, 0)] {
        assert_eq!(store.get(&flush(token, n)).await.unwrap(), None, "flush {n} of turn {token} deleted");
    }
    let mut stale = vec![(keys::live_prefix("s", 4), vec![flush(4, 0)])];
    let head = bytes("v2").into();
    let refused = store.commit(Vec::new(), "h/s~", head, Expect::Version(v0), &mut stale).await.unwrap();
    assert_eq!(refused, None);
    left_to_the_caller(stale).await;
    assert_eq!(store.get(&flush(4, 0)).await.unwrap(), None, "deleted with a refused head too");
    assert_eq!(value(store, &flush(3, 0)).await, Some(bytes("part")), "a live log not given stays");
    assert_eq!(value(store, "h/s~").await, Some(bytes("v1")));
}

/// `prepare_write` is a hint: the write of the key that follows is an ordinary one (its condition
/// checked, its records written), whichever kind it is, and a preparation no write follows writes
/// nothing.
pub async fn a_prepared_write_is_an_ordinary_write_of_its_key(store: &dyn Store) {
    store.prepare_write("h/p~");
    let v1 = store.put("h/p~", bytes("1").into(), Expect::Absent).await.unwrap().expect("nothing there yet");
    store.prepare_write("h/p~");
    assert_eq!(store.put("h/p~", bytes("again").into(), Expect::Absent).await.unwrap(), None, "it exists now");
    store.prepare_write("h/p~");
    let records = vec![("e/p~/2/1".to_owned(), bytes("batch 2"))];
    let v2 = store
        .commit(records, "h/p~", bytes("2").into(), Expect::Version(v1.clone()), &mut Vec::new())
        .await
        .unwrap()
        .unwrap();
    store.prepare_write("h/p~");
    let stale = vec![("e/p~/3/1".to_owned(), bytes("stale"))];
    assert_eq!(
        store.commit(stale, "h/p~", bytes("3").into(), Expect::Version(v1), &mut Vec::new()).await.unwrap(),
        None
    );
    assert_eq!(value(store, "h/p~").await, Some(bytes("2")), "a refused commit leaves the head");
    store.prepare_write("h/p~");
    let v3 = store.update("h/p~", appending_plus()).await.unwrap().unwrap();
    assert_ne!(v2, v3);
    assert_eq!(value(store, "h/p~").await, Some(bytes("2+")));
    assert_eq!(value(store, "e/p~/2/1").await, Some(bytes("batch 2")));
    // Prepared for one key, written another: both writes are ordinary ones.
    store.prepare_write("h/q~");
    assert!(store.put("h/r~", bytes("r").into(), Expect::Absent).await.unwrap().is_some());
    assert!(store.put("h/q~", bytes("q").into(), Expect::Absent).await.unwrap().is_some());
    store.prepare_write("h/never~");
    assert_eq!(store.get("h/never~").await.unwrap(), None, "a preparation alone writes nothing");
    assert_eq!(value(store, "h/q~").await, Some(bytes("q")));
    assert_eq!(value(store, "h/r~").await, Some(bytes("r")));
}

/// An update that writes the current value (which must exist) with a `+` appended.
fn appending_plus() -> Decide {
    Box::new(|current| {
        let mut value = current.expect("the key was written before").value.clone();
        value.push(b'+');
        Decision::Write(value.into())
    })
}

pub async fn update_decides_on_the_current_value(store: &dyn Store) {
    let kept = store
        .update(
            "h/u~",
            Box::new(|current| {
                assert!(current.is_none());
                Decision::Keep
            }),
        )
        .await
        .unwrap();
    assert_eq!(kept, None);
    assert_eq!(store.get("h/u~").await.unwrap(), None, "Keep writes nothing");
    let created = store.update("h/u~", Box::new(|_| Decision::Write(bytes("1").into()))).await.unwrap().unwrap();
    let next = store.update("h/u~", appending_plus()).await.unwrap().unwrap();
    assert_ne!(created, next);
    assert_eq!(value(store, "h/u~").await, Some(bytes("1+")));
}

pub async fn delete_session_removes_its_records_and_no_one_elses(store: &dyn Store) {
    for id in ["a", "ab", "a/b"] {
        store.put(&keys::head_key(id), bytes(id).into(), Expect::Any).await.unwrap();
        store.put(&keys::batch_key(id, 1, 1), bytes(id).into(), Expect::Any).await.unwrap();
        store.put(&keys::snapshot_key(id, 1, 1), bytes(id).into(), Expect::Any).await.unwrap();
    }
    let head = store.get(&keys::head_key("a")).await.unwrap().unwrap();
    let prefixes = keys::record_prefixes("a");
    assert!(!store.delete_session(&keys::head_key("a"), Some("not-the-version"), &prefixes).await.unwrap());
    assert!(store.get(&keys::batch_key("a", 1, 1)).await.unwrap().is_some(), "a refused delete keeps all");
    assert!(store.delete_session(&keys::head_key("a"), Some(&head.version), &prefixes).await.unwrap());
    for key in [keys::head_key("a"), keys::batch_key("a", 1, 1), keys::snapshot_key("a", 1, 1)] {
        assert_eq!(store.get(&key).await.unwrap(), None, "{key} deleted");
    }
    for id in ["ab", "a/b"] {
        for key in [keys::head_key(id), keys::batch_key(id, 1, 1), keys::snapshot_key(id, 1, 1)] {
            assert_eq!(value(store, &key).await, Some(bytes(id)), "{key} kept");
        }
    }
    // Without an expected head: the records a failed delete left, only while no head is there.
    let prefixes = keys::record_prefixes("ab");
    assert!(!store.delete_session(&keys::head_key("ab"), None, &prefixes).await.unwrap(), "ab has a head");
    assert_eq!(value(store, &keys::batch_key("ab", 1, 1)).await, Some(bytes("ab")), "a session's records kept");
    store.put(&keys::batch_key("a", 2, 1), bytes("a").into(), Expect::Any).await.unwrap();
    store.put(&keys::live_key("a", 1, 0), bytes("a").into(), Expect::Any).await.unwrap();
    assert!(store.delete_session(&keys::head_key("a"), None, &keys::record_prefixes("a")).await.unwrap());
    for key in [keys::batch_key("a", 2, 1), keys::live_key("a", 1, 0)] {
        assert_eq!(store.get(&key).await.unwrap(), None, "left behind, {key} deleted");
    }
    assert_eq!(value(store, &keys::batch_key("ab", 1, 1)).await, Some(bytes("ab")), "ab kept");
}

pub async fn delete_prefix_removes_a_live_log_and_nothing_else(store: &dyn Store) {
    for (id, token) in [("a", 7), ("a", 8), ("ab", 7)] {
        for n in 0..3 {
            store.put(&keys::live_key(id, token, n), bytes(id).into(), Expect::Absent).await.unwrap();
        }
    }
    let known = (0..3).map(|n| keys::live_key("a", 7, n)).collect();
    store.delete_prefix(&keys::live_prefix("a", 7), known).await.unwrap();
    // Without the keys: listed.
    store.delete_prefix(&keys::live_prefix("ab", 7), Vec::new()).await.unwrap();
    for n in 0..3 {
        assert_eq!(store.get(&keys::live_key("a", 7, n)).await.unwrap(), None);
        assert_eq!(store.get(&keys::live_key("ab", 7, n)).await.unwrap(), None);
        assert_eq!(value(store, &keys::live_key("a", 8, n)).await, Some(bytes("a")), "another turn's log kept");
    }
}

pub async fn get_many_returns_values_in_order_with_gaps(store: &dyn Store) {
    store.put("e/m~/1", bytes("one").into(), Expect::Any).await.unwrap();
    store.put("e/m~/3", bytes("three").into(), Expect::Any).await.unwrap();
    let keys: Vec<String> = ["e/m~/3", "e/m~/2", "e/m~/1"].map(str::to_owned).to_vec();
    let values: Vec<Option<Vec<u8>>> =
        store.get_many(keys).await.unwrap().into_iter().map(|entry| entry.map(|e| e.value)).collect();
    assert_eq!(values, [Some(bytes("three")), None, Some(bytes("one"))]);
    assert!(store.get_many(Vec::new()).await.unwrap().is_empty());
}

/// A chain like a session load's: "a" names "b" and "c", "b" names "c" (read once) and "d" (missing).
pub async fn read_linked_follows_what_each_value_names_once(store: &dyn Store) {
    for (key, names) in [("l/a", "l/b l/c"), ("l/b", "l/c l/d"), ("l/c", ""), ("l/x", "l/a")] {
        store.put(key, bytes(names).into(), Expect::Any).await.unwrap();
    }
    let calls = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = calls.clone();
    let follow: agent_session::store::Follow =
        std::rc::Rc::new(move |key: &str, entry: &agent_session::store::Entry| {
            seen.borrow_mut().push(key.to_owned());
            Some(String::from_utf8(entry.value.clone()).unwrap().split_whitespace().map(str::to_owned).collect())
        });
    let mut read = agent_session::store::read_linked(store, vec!["l/a".to_owned()], follow).await.unwrap();
    read.sort_by(|a, b| a.0.cmp(&b.0));
    let read: Vec<(String, Option<Vec<u8>>)> =
        read.into_iter().map(|(key, entry)| (key, entry.map(|e| e.value))).collect();
    assert_eq!(
        read,
        [
            ("l/a".to_owned(), Some(bytes("l/b l/c"))),
            ("l/b".to_owned(), Some(bytes("l/c l/d"))),
            ("l/c".to_owned(), Some(bytes(""))),
            ("l/d".to_owned(), None),
        ]
    );
    let mut calls = calls.borrow().clone();
    calls.sort();
    assert_eq!(calls, ["l/a", "l/b", "l/c"], "each value found is followed once; a missing one is not");
}

/// Runs every case of the contract against a fresh store from `$open`, one test each:
/// `store_contract!(native, open)` blocks on it (memory), `store_contract!(wasm, open)` is a
/// wasm-bindgen-test.
#[macro_export]
macro_rules! store_contract {
    ($mode:ident, $open:expr) => {
        $crate::store_contract!(@cases $mode, $open,
            get_of_a_missing_key_is_none,
            put_then_get_round_trips_any_bytes,
            must_not_exist_refuses_an_existing_key_and_writes_nothing,
            compare_and_set_needs_the_current_version,
            a_recreated_key_never_repeats_a_version,
            delete_checks_the_expected_version,
            list_is_by_prefix_in_order_and_pages_completely,
            commit_writes_records_and_head_only_at_the_expected_version,
            a_prepared_write_is_an_ordinary_write_of_its_key,
            commit_deletes_the_stale_live_logs_it_takes,
            update_decides_on_the_current_value,
            delete_session_removes_its_records_and_no_one_elses,
            delete_prefix_removes_a_live_log_and_nothing_else,
            get_many_returns_values_in_order_with_gaps,
            read_linked_follows_what_each_value_names_once);
    };
    (@cases native, $open:expr, $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                support::block_on(async {
                    let store = $open().await;
                    $crate::store_suite::$case(&*store).await;
                })
            }
        )*
    };
    (@cases wasm, $open:expr, $($case:ident),*) => {
        $(
            #[wasm_bindgen_test::wasm_bindgen_test]
            async fn $case() {
                let store = $open().await;
                $crate::store_suite::$case(&*store).await;
            }
        )*
    };
}
