//! The fold: state is the fold of events, and `to_events` rebuilds it (what a fork copies).

use agent_session::core::{Event, SessionState};
use proptest::prelude::*;

use crate::fixtures::json;

fn message(agent: &str, data: &str) -> Event {
    Event::Message { agent: agent.into(), data: json(data) }
}

#[test]
fn fold_applies_messages_sets_and_deletes_per_agent() {
    let mut state = SessionState::default();
    state.apply_all(&[
        message("a", "1"),
        Event::StateSet { agent: "a".into(), key: "k".into(), data: json("\"x\"") },
        message("b", "2"),
        message("a", "3"),
        Event::StateSet { agent: "a".into(), key: "k".into(), data: json("\"y\"") },
        Event::StateSet { agent: "a".into(), key: "gone".into(), data: json("0") },
        Event::StateDelete { agent: "a".into(), key: "gone".into() },
        Event::StateDelete { agent: "nobody".into(), key: "k".into() },
        Event::Interrupt { reason: "r".into(), data: json("null") },
        Event::Resume { data: json("1") },
        Event::Forked { data: json("{}") },
        Event::Closed,
    ]);
    let a = state.agent("a").unwrap();
    assert_eq!(a.messages, vec![json("1"), json("3")]);
    assert_eq!(a.state.len(), 1);
    assert_eq!(a.state.get("k"), Some(&json("\"y\"")));
    assert_eq!(state.agent("b").unwrap().messages, vec![json("2")]);
    // A delete for an agent that never wrote creates nothing; lifecycle events carry no agent data.
    assert!(state.agent("nobody").is_none());
    assert_eq!(state.agents.len(), 2);
}

#[test]
fn event_agents_and_weights() {
    assert_eq!(message("ab", "xyz").weight(), 5);
    assert_eq!(Event::StateSet { agent: "a".into(), key: "kk".into(), data: json("123") }.weight(), 6);
    assert_eq!(Event::StateDelete { agent: "a".into(), key: "kk".into() }.weight(), 3);
    assert_eq!(Event::Closed.weight(), 0);
    assert_eq!(message("ab", "").agent(), Some("ab"));
    assert_eq!(Event::Closed.agent(), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Folding `to_events()` of any folded state gives the same state back.
    #[test]
    fn to_events_rebuilds_the_state(ops in proptest::collection::vec((0..3u8, 0..3u8, 0..4u8, "[a-z]{0,3}"), 0..40)) {
        let agents = ["default", "planner", "é"];
        let keys = ["k1", "k2", "k3", "k/4"];
        let mut state = SessionState::default();
        for (op, agent, key, data) in ops {
            let agent = agents[agent as usize].to_owned();
            let key = keys[key as usize].to_owned();
            state.apply(&match op {
                0 => Event::Message { agent, data: json(&data) },
                1 => Event::StateSet { agent, key, data: json(&data) },
                _ => Event::StateDelete { agent, key },
            });
        }
        let mut rebuilt = SessionState::default();
        rebuilt.apply_all(&state.to_events());
        // An agent whose state was emptied by deletes and that has no messages leaves no event.
        let mut expected = state.clone();
        expected.agents.retain(|_, a| !a.messages.is_empty() || !a.state.is_empty());
        prop_assert_eq!(rebuilt, expected);
    }
}

mod segments {
    use std::collections::BTreeMap;

    use agent_session::core::snapshot::next_snapshot;
    use agent_session::core::{Event, SessionState, Snapshot, SnapshotRef};

    fn message(agent: &str, text: &str) -> Event {
        Event::Message { agent: agent.into(), data: text.into() }
    }

    fn state_of(events: &[Event]) -> SessionState {
        let mut state = SessionState::default();
        state.apply_all(events);
        state
    }

    #[test]
    fn a_snapshot_writes_only_the_messages_new_since_the_one_before() {
        let first_events = [message("a", "1"), message("a", "2"), message("b", "x")];
        let (segment, first) = next_snapshot(&SessionState::default(), &first_events, None, 3, 7, vec![5, 6, 7]);
        let segment = segment.expect("new messages make a segment");
        assert_eq!(segment.agents, vec![("a".into(), vec!["1".into(), "2".into()]), ("b".into(), vec!["x".into()])]);
        assert_eq!(first.segments, vec![SnapshotRef { version: 3, token: 7 }]);
        assert_eq!(first.counts, BTreeMap::from([("a".into(), 2), ("b".into(), 1)]));
        assert!(first.state.agents.values().all(|a| a.messages.is_empty()), "no message in the snapshot itself");

        // Later: state has 4 messages of a (2 committed since), the commit adds one more and a value.
        let state =
            state_of(&[message("a", "1"), message("a", "2"), message("b", "x"), message("a", "3"), message("a", "4")]);
        let set = Event::StateSet { agent: "a".into(), key: "k".into(), data: "1".into() };
        let (segment, second) = next_snapshot(&state, &[message("a", "5"), set], Some(&first), 9, 8, vec![8]);
        assert_eq!(segment.unwrap().agents, vec![("a".into(), vec!["3".into(), "4".into(), "5".into()])]);
        assert_eq!(second.segments, vec![SnapshotRef { version: 3, token: 7 }, SnapshotRef { version: 9, token: 8 }]);
        assert_eq!(second.counts, BTreeMap::from([("a".into(), 5), ("b".into(), 1)]));
        assert_eq!(second.state.agents["a"].state.get("k").map(|v| v.to_string()), Some("1".into()));
        assert_eq!(second.previous, Some(SnapshotRef { version: 3, token: 7 }));

        // Nothing new: no segment, the same segments named.
        let (segment, third) = next_snapshot(
            &state_of(&[message("a", "1")]),
            &[],
            Some(&Snapshot { counts: BTreeMap::from([("a".into(), 1)]), ..second.clone() }),
            10,
            9,
            vec![9],
        );
        assert!(segment.is_none());
        assert_eq!(third.segments, second.segments);
    }

    #[test]
    fn after_a_snapshot_of_the_first_layout_the_next_segment_holds_every_message() {
        let inline = Snapshot {
            version: 2,
            token: 1,
            previous: None,
            commits: vec![1, 1],
            segments: Vec::new(),
            counts: BTreeMap::new(),
            state: SessionState::default(),
        };
        let state = state_of(&[message("a", "1"), message("a", "2")]);
        let (segment, next) = next_snapshot(&state, &[message("a", "3")], Some(&inline), 3, 2, vec![2]);
        assert_eq!(segment.unwrap().agents, vec![("a".into(), vec!["1".into(), "2".into(), "3".into()])]);
        assert_eq!(next.segments, vec![SnapshotRef { version: 3, token: 2 }]);
    }

    #[test]
    fn a_previous_snapshot_that_counts_more_than_the_session_has_is_not_built_on() {
        let wrong = Snapshot {
            version: 5,
            token: 3,
            previous: None,
            commits: vec![3],
            segments: vec![SnapshotRef { version: 5, token: 3 }],
            counts: BTreeMap::from([("a".into(), 9)]),
            state: SessionState::default(),
        };
        let state = state_of(&[message("a", "1"), message("a", "2")]);
        let (segment, next) = next_snapshot(&state, &[], Some(&wrong), 6, 4, vec![4]);
        assert_eq!(segment.unwrap().agents, vec![("a".into(), vec!["1".into(), "2".into()])]);
        assert_eq!(next.segments, vec![SnapshotRef { version: 6, token: 4 }], "a new list of segments");
        assert_eq!(next.previous, Some(SnapshotRef { version: 5, token: 3 }), "history still walks back through it");
    }
}
