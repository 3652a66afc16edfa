//! The head's commit tokens as runs (core/commits.rs): the same tokens as a plain list, in a few
//! bytes whatever the session's length, and heads written before runs still read.

use agent_session::core::codec::{decode_head, encode_head};
use agent_session::core::Commits;
use proptest::prelude::*;

use crate::fixtures::*;

/// A head as builds before token runs wrote it (layout 1, every token listed): `full_head()` with
/// the commit tokens 5, 6, 6, 6, 9, 10, 11 (printed by `encode_head` at 41644a4).
const LAYOUT_1_HEAD: &str = "41534801ac0201010b776f726b657220c3a92f31074162432d5f30394d88f795ffbc314d01fa01460705060606090a0b8098fcd5bc3180d095ffbc310180dddb0101ffffffffffffffffff010115617070726f766520746865207472616e736665723f1b7b22616d6f756e74223a31322e352c22746f223a225a6fc3ab227d011f7b2275736572223a22752d31222c2274616773223a5b2261222c2262225d7d014d117573657220707265737365642073746f700674616220c3a981d095ffbc31014c0406696e762d3736000106696e762d373778037f616514";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn a_head_of_layout_1_still_decodes_and_is_written_again_as_runs() {
    let mut expected = full_head();
    expected.commits = vec![5, 6, 6, 6, 9, 10, 11].into();
    let head = decode_head("h/s", &hex(LAYOUT_1_HEAD)).unwrap();
    assert_eq!(head, expected);
    let again = encode_head(&head);
    assert_eq!(again[3], 2, "written with layout 2");
    assert_eq!(decode_head("h/s", &again).unwrap(), expected);
}

#[test]
fn a_head_stays_small_whatever_the_number_of_commits() {
    let size = |commits: Commits| {
        let version = commits.len();
        encode_head(&agent_session::core::Head { version, commits, ..minimal_head() }).len()
    };
    // One commit per turn, each turn the next token; four per turn (checkpoints); a turn aborted
    // every 100 (a token without commits).
    let plain = |n: u64| (1..=n).collect::<Commits>();
    let checkpoints = |n: u64| (0..n).map(|i| 1 + i / 4).collect::<Commits>();
    let aborts = |n: u64| (1..=n).map(|i| i + i / 100).collect::<Commits>();
    // A snapshot due at the second of a turn's four commits: the head's list starts mid-turn.
    let cut = |n: u64| (2..n + 2).map(|i| 1 + i / 4).collect::<Commits>();
    let kinds: [(&str, &dyn Fn(u64) -> Commits); 4] =
        [("plain", &plain), ("checkpoints", &checkpoints), ("aborts", &aborts), ("cut", &cut)];
    for (name, make) in kinds {
        let small = size(make(10));
        let large = size(make(100_000));
        let bound = if name == "aborts" { 1000 * 8 } else { 20 };
        assert!(large <= small + bound, "{name}: {small} bytes at 10 commits, {large} at 100,000");
    }
    assert!(plain(100_000).runs().len() <= 2, "{:?}", plain(100_000).runs());
    assert!(checkpoints(100_000).runs().len() <= 2, "{:?}", checkpoints(100_000).runs());
    assert!(cut(100_001).runs().len() <= 3, "{:?}", cut(100_001).runs());
}

#[test]
fn malformed_runs_are_refused() {
    use agent_session::core::commits::TokenRun;
    for run in [
        TokenRun { first: 1, each: 1, tokens: 0 },
        TokenRun { first: 1, each: 0, tokens: 1 },
        TokenRun { first: u64::MAX, each: 1, tokens: 2 },
        TokenRun { first: 1, each: u64::MAX, tokens: 3 },
    ] {
        assert_eq!(Commits::from_runs(vec![run]), None, "{run:?}");
    }
}

/// Token lists as sessions make them: mostly the next token or the same one again, sometimes a jump.
fn tokens() -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::vec((0..10u8, 0..1000u64), 0..200).prop_map(|steps| {
        let mut token = 1u64;
        steps
            .into_iter()
            .map(|(kind, jump)| {
                token += match kind {
                    0..=3 => 0,
                    4..=7 => 1,
                    8 => jump,
                    _ => 2,
                };
                token
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn runs_hold_the_same_tokens_as_the_list(list in prop_oneof![tokens(), proptest::collection::vec(any::<u64>(), 0..50)]) {
        let commits: Commits = list.clone().into();
        prop_assert_eq!(commits.len(), list.len() as u64);
        prop_assert_eq!(commits.iter().collect::<Vec<_>>(), list.clone());
        for (i, token) in list.iter().enumerate() {
            prop_assert_eq!(commits.get(i as u64), Some(*token));
        }
        prop_assert_eq!(commits.get(list.len() as u64), None);
        prop_assert_eq!(commits.last(), list.last().copied());
        prop_assert_eq!(Commits::from_runs(commits.runs().to_vec()), Some(commits.clone()));
        let head = agent_session::core::Head { version: list.len() as u64, commits, ..minimal_head() };
        prop_assert_eq!(decode_head("h/s", &encode_head(&head)).unwrap(), head);
    }
}
