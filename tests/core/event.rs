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
    use agent_session::core::snapshot::{next_snapshot, Previous};
    use agent_session::core::{Event, Layers, SessionState, Snapshot, SnapshotRef, StateLayer};

    fn message(agent: &str, text: &str) -> Event {
        Event::Message { agent: agent.into(), data: text.into() }
    }

    fn set(agent: &str, key: &str, data: &str) -> Event {
        Event::StateSet { agent: agent.into(), key: key.into(), data: data.into() }
    }

    fn state_of(events: &[Event]) -> SessionState {
        let mut state = SessionState::default();
        state.apply_all(events);
        state
    }

    /// A snapshot built on, its state values known (a store that wrote or loaded it).
    fn known(snapshot: &Snapshot) -> Previous<'_> {
        Previous { snapshot, values: Some(&snapshot.state) }
    }

    fn values(layer: &StateLayer) -> Vec<(String, String, Option<String>)> {
        let entry = |event: &Event| match event {
            Event::StateSet { agent, key, data } => (agent.clone(), key.clone(), Some(data.to_string())),
            Event::StateDelete { agent, key } => (agent.clone(), key.clone(), None),
            other => panic!("not a state event: {other:?}"),
        };
        layer.events.iter().map(entry).collect()
    }

    #[test]
    fn a_snapshot_writes_only_the_messages_new_since_the_one_before() {
        let first_events = [message("a", "1"), message("a", "2"), message("b", "x")];
        let (segment, first) = next_snapshot(&SessionState::default(), &first_events, None, 3, 7, vec![5, 6, 7].into());
        let segment = segment.expect("new messages make a segment");
        assert_eq!(segment.agents, vec![("a".into(), vec!["1".into(), "2".into()]), ("b".into(), vec!["x".into()])]);
        assert_eq!(first.segments, vec![SnapshotRef { version: 3, token: 7 }]);
        assert_eq!(first.counts, vec![("a".into(), 2), ("b".into(), 1)]);
        assert!(first.state.agents.values().all(|a| a.messages.is_empty()), "no message in the snapshot itself");

        // Later: state has 4 messages of a (2 committed since), the commit adds one more and a value.
        let mut events = first_events.to_vec();
        events.extend([message("a", "3"), message("a", "4")]);
        let state = state_of(&events);
        let commit = [message("a", "5"), set("a", "k", "1")];
        let (segment, second) = next_snapshot(&state, &commit, Some(known(&first)), 9, 8, vec![8].into());
        assert_eq!(segment.unwrap().agents, vec![("a".into(), vec!["3".into(), "4".into(), "5".into()])]);
        assert_eq!(second.segments, vec![SnapshotRef { version: 3, token: 7 }, SnapshotRef { version: 9, token: 8 }]);
        assert_eq!(second.counts, vec![("a".into(), 5), ("b".into(), 1)]);
        assert_eq!(second.state.agents["a"].state.get("k").map(|v| v.to_string()), Some("1".into()));
        assert_eq!(second.previous, Some(SnapshotRef { version: 3, token: 7 }));

        // Nothing new: no segment, the same segments named.
        events.extend(commit);
        let (segment, third) = next_snapshot(&state_of(&events), &[], Some(known(&second)), 10, 9, vec![9].into());
        assert!(segment.is_none());
        assert_eq!(third.segments, second.segments);
        assert_eq!(third.layers, second.layers);
    }

    #[test]
    fn a_snapshot_writes_only_the_values_set_or_deleted_since_the_one_before() {
        let big = format!("\"{}\"", "v".repeat(1000));
        let start = [set("a", "keep", &big), set("a", "gone", "1"), set("b", "other", &big)];
        let (segment, first) = next_snapshot(&SessionState::default(), &start, None, 1, 1, vec![1].into());
        let layer = segment.unwrap().state.unwrap();
        assert!(layer.full, "the first layer holds every value");
        assert_eq!(values(&layer).len(), 3);
        assert_eq!(first.layers.map(|l| l.from), Some(0));

        let mut state = state_of(&start);
        let commit = [set("a", "new", "2"), Event::StateDelete { agent: "a".into(), key: "gone".into() }];
        let (segment, second) = next_snapshot(&state, &commit, Some(known(&first)), 2, 2, vec![2].into());
        let segment = segment.expect("new values make a segment");
        assert!(segment.agents.is_empty(), "no message");
        let layer = segment.state.unwrap();
        assert!(!layer.full);
        assert_eq!(
            values(&layer),
            vec![("a".into(), "gone".into(), None), ("a".into(), "new".into(), Some("2".into()))],
            "the unchanged values are not written again"
        );
        assert_eq!(second.layers, Some(Layers { from: 0, bytes: first.layers.unwrap().bytes + 4 + 3 + 1 }));
        state.apply_all(&commit);
        assert_eq!(second.state, state, "the snapshot holds the values after the commit");

        // A value set again to the same text, in a new allocation, is not written either.
        let again = [set("a", "keep", &big)];
        let (segment, _) = next_snapshot(&state, &again, Some(known(&second)), 3, 3, vec![3].into());
        assert!(segment.is_none());

        // Without the values of the snapshot before (another store wrote it), every value.
        let unknown = Previous { snapshot: &second, values: None };
        let (segment, third) = next_snapshot(&state, &[set("a", "x", "3")], Some(unknown), 3, 3, vec![3].into());
        let layer = segment.unwrap().state.unwrap();
        assert!(layer.full);
        assert_eq!(values(&layer).len(), 4);
        assert_eq!(third.layers.map(|l| l.from), Some(2), "the layers start again at the new segment");
    }

    #[test]
    fn once_the_layers_repeat_more_than_the_state_holds_a_full_layer_is_written() {
        let value = |n: usize| format!("\"{}{n}\"", "v".repeat(100));
        let mut state = state_of(&[set("a", "k", &value(0))]);
        let (_, mut snapshot) =
            next_snapshot(&SessionState::default(), &[set("a", "k", &value(0))], None, 1, 1, vec![1].into());
        let mut full_at = Vec::new();
        for n in 1..8u64 {
            let commit = [set("a", "k", &value(n as usize))];
            let (segment, next) = next_snapshot(&state, &commit, Some(known(&snapshot)), n + 1, 1, vec![1].into());
            state.apply_all(&commit);
            let layers = next.layers.unwrap();
            assert!(layers.bytes <= 2 * 105, "the layers hold at most twice the state: {layers:?}");
            if segment.unwrap().state.unwrap().full {
                full_at.push(n);
                assert_eq!(layers.from as usize, next.segments.len() - 1);
            }
            snapshot = next;
        }
        assert_eq!(full_at, vec![2, 4, 6], "a full layer every other snapshot of a value rewritten each time");
    }

    #[test]
    fn after_a_snapshot_of_the_first_layout_the_next_segment_holds_every_message() {
        let inline = Snapshot {
            version: 2,
            token: 1,
            previous: None,
            commits: vec![1, 1].into(),
            segments: Vec::new(),
            counts: Vec::new(),
            state: state_of(&[set("a", "k", "1")]),
            layers: None,
        };
        let state = state_of(&[message("a", "1"), message("a", "2"), set("a", "k", "1")]);
        let (segment, next) = next_snapshot(&state, &[message("a", "3")], Some(known(&inline)), 3, 2, vec![2].into());
        let segment = segment.unwrap();
        assert_eq!(segment.agents, vec![("a".into(), vec!["1".into(), "2".into(), "3".into()])]);
        assert_eq!(next.segments, vec![SnapshotRef { version: 3, token: 2 }]);
        let layer = segment.state.unwrap();
        assert!(layer.full, "the values were inline: the first layer holds them all");
        assert_eq!(values(&layer), vec![("a".into(), "k".into(), Some("1".into()))]);
    }

    #[test]
    fn a_previous_snapshot_that_counts_more_than_the_session_has_is_not_built_on() {
        let wrong = Snapshot {
            version: 5,
            token: 3,
            previous: None,
            commits: vec![3].into(),
            segments: vec![SnapshotRef { version: 5, token: 3 }],
            counts: vec![("a".into(), 9)],
            state: SessionState::default(),
            layers: Some(Layers { from: 0, bytes: 0 }),
        };
        let state = state_of(&[message("a", "1"), message("a", "2")]);
        let (segment, next) = next_snapshot(&state, &[], Some(known(&wrong)), 6, 4, vec![4].into());
        assert_eq!(segment.unwrap().agents, vec![("a".into(), vec!["1".into(), "2".into()])]);
        assert_eq!(next.segments, vec![SnapshotRef { version: 6, token: 4 }], "a new list of segments");
        assert_eq!(next.layers, Some(Layers { from: 0, bytes: 0 }));
        assert_eq!(next.previous, Some(SnapshotRef { version: 5, token: 3 }), "history still walks back through it");
    }

    /// One commit of the property below: `(agent, key, value)`, value `None` a delete, `Some(0)` a
    /// message instead of a value.
    type Step = Vec<(u8, u8, Option<u8>)>;

    fn events_of(step: &Step) -> Vec<Event> {
        let event = |&(agent, key, value): &(u8, u8, Option<u8>)| {
            let (agent, key) = (format!("agent{agent}"), format!("key{key}"));
            match value {
                None => Event::StateDelete { agent, key },
                Some(0) => Event::Message { agent, data: "\"m\"".into() },
                // Values of very different sizes, so that the layers sometimes outgrow the state.
                Some(n) => {
                    Event::StateSet { agent, key, data: format!("\"{}\"", "v".repeat(usize::from(n) * 7)).into() }
                }
            }
        };
        step.iter().map(event).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, failure_persistence: None, ..Default::default() })]

        /// Whatever is set and deleted, by however many agents, over however many snapshots: the
        /// layers a snapshot names, applied from its `from` on, give its state values, and they hold
        /// at most about twice what those values hold.
        #[test]
        fn the_layers_of_every_snapshot_give_its_values(
            steps in proptest::collection::vec(proptest::collection::vec((0u8..3, 0u8..6, proptest::option::of(0u8..20)), 0..6), 1..25),
        ) {
            let mut state = SessionState::default();
            let mut written: Vec<Option<StateLayer>> = Vec::new(); // the segments' layers, by index
            let mut previous: Option<Snapshot> = None;
            for (n, step) in steps.iter().enumerate() {
                let events = events_of(step);
                let version = n as u64 + 1;
                let (segment, snapshot) = next_snapshot(&state, &events, previous.as_ref().map(known), version, 1, vec![1].into());
                state.apply_all(&events);
                if let Some(segment) = segment {
                    written.push(segment.state);
                }
                let layers = snapshot.layers.unwrap();
                let mut read = SessionState::default();
                for (index, layer) in written.iter().enumerate().skip(layers.from as usize) {
                    let layer = layer.as_ref().map_or_else(StateLayer::default, Clone::clone);
                    proptest::prop_assert!(index != layers.from as usize || layer.full, "the first layer read is full");
                    if layer.full {
                        read.agents.values_mut().for_each(|a| a.state.clear());
                    }
                    read.apply_all(&layer.events);
                }
                let values = |s: &SessionState| -> Vec<(String, String, String)> {
                    let entries = s.agents.iter().flat_map(|(a, st)| st.state.iter().map(move |(k, v)| (a.clone(), k.clone(), v.to_string())));
                    entries.collect()
                };
                proptest::prop_assert_eq!(values(&read), values(&state));
                let live: usize = state.agents.values().flat_map(|a| a.state.iter()).map(|(k, v)| k.len() + v.len()).sum();
                proptest::prop_assert!(layers.bytes as usize <= 2 * live, "layers {} for {} bytes of values", layers.bytes, live);
                previous = Some(snapshot);
            }
        }
    }
}
