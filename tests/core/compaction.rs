//! Compaction in the core: the tool-pair rule on message shapes taken from each format's own types
//! or docs, the fold of a `compacted` event, the snapshot after one, and the retention rules.

use agent_session::core::keys::{batch_key, parse_record_key, segment_key, snapshot_key};
use agent_session::core::retention::{doomed, oldest_kept};
use agent_session::core::snapshot::{next_snapshot, Previous};
use agent_session::core::tool_pairs::{check_cut, tool_ids};
use agent_session::core::{CoreError, Event, Json, SessionState, Snapshot, SnapshotRef};

use crate::fixtures::*;

fn messages(texts: &[&str]) -> Vec<Json> {
    texts.iter().map(|t| json(t)).collect()
}

/// (format, the call message, the result message, the id).
fn pairs() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        (
            "OpenAI Chat Completions",
            r#"{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"f","arguments":"{}"}}]}"#,
            r#"{"role":"tool","tool_call_id":"call_abc","content":"42"}"#,
            "call_abc",
        ),
        (
            "OpenAI Responses items",
            r#"{"type":"function_call","id":"fc_1","call_id":"call_r1","name":"f","arguments":"{}"}"#,
            r#"{"type":"function_call_output","call_id":"call_r1","output":"42"}"#,
            "call_r1",
        ),
        (
            "OpenAI Agents JS items",
            r#"{"type":"function_call","callId":"call_a1","name":"f","arguments":"{}","status":"completed"}"#,
            r#"{"type":"function_call_result","callId":"call_a1","name":"f","status":"completed","output":{"type":"text","text":"42"}}"#,
            "call_a1",
        ),
        (
            "OpenAI Responses computer call",
            r#"{"type":"computer_call","id":"cu_1","call_id":"call_c1","action":{"type":"screenshot"},"pending_safety_checks":[],"status":"completed"}"#,
            r#"{"type":"computer_call_output","call_id":"call_c1","output":{"type":"computer_screenshot","image_url":"data:"}}"#,
            "call_c1",
        ),
        (
            "OpenAI Responses custom tool call",
            r#"{"type":"custom_tool_call","id":"ctc_1","call_id":"call_x1","name":"grammar","input":"x"}"#,
            r#"{"type":"custom_tool_call_output","call_id":"call_x1","output":"ok"}"#,
            "call_x1",
        ),
        (
            "OpenAI Agents JS computer call",
            r#"{"type":"computer_call","callId":"call_c2","status":"completed","action":{"type":"screenshot"}}"#,
            r#"{"type":"computer_call_result","callId":"call_c2","output":{"type":"computer_screenshot","data":"data:"}}"#,
            "call_c2",
        ),
        (
            "OpenAI Agents JS shell call",
            r#"{"type":"shell_call","callId":"call_s1","status":"completed","action":{"commands":["ls"]}}"#,
            r#"{"type":"shell_call_output","callId":"call_s1","output":[{"stdout":"a","stderr":"","outcome":{"type":"exit","exitCode":0}}]}"#,
            "call_s1",
        ),
        (
            "OpenAI Agents JS apply_patch call",
            r#"{"type":"apply_patch_call","callId":"call_p1","status":"completed","operation":{"type":"delete_file","path":"a"}}"#,
            r#"{"type":"apply_patch_call_output","callId":"call_p1","status":"completed"}"#,
            "call_p1",
        ),
        (
            "OpenAI Agents JS tool search",
            r#"{"type":"tool_search_call","callId":"call_t1","execution":"client","arguments":{"query":"x"}}"#,
            r#"{"type":"tool_search_output","callId":"call_t1","execution":"client","tools":[]}"#,
            "call_t1",
        ),
        (
            "Anthropic server tool",
            r#"{"role":"assistant","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}}]}"#,
            r#"{"role":"assistant","content":[{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]}]}"#,
            "srvtoolu_1",
        ),
        (
            "Anthropic",
            r#"{"role":"assistant","content":[{"type":"text","text":"let me check"},{"type":"tool_use","id":"toolu_01","name":"f","input":{}}]}"#,
            r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"42"}]}"#,
            "toolu_01",
        ),
        (
            "Bedrock / Strands",
            r#"{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_x","name":"f","input":{}}}]}"#,
            r#"{"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_x","status":"success","content":[{"text":"42"}]}}]}"#,
            "tooluse_x",
        ),
        (
            "LangChain",
            r#"{"type":"ai","content":"","tool_calls":[{"id":"lc_1","name":"f","args":{}}]}"#,
            r#"{"type":"tool","content":"42","tool_call_id":"lc_1"}"#,
            "lc_1",
        ),
        (
            "LangChain serialized",
            r#"{"lc":1,"type":"constructor","id":["langchain_core","messages","AIMessage"],"kwargs":{"content":"","tool_calls":[{"id":"lc_2","name":"f","args":{}}]}}"#,
            r#"{"lc":1,"type":"constructor","id":["langchain_core","messages","ToolMessage"],"kwargs":{"content":"42","tool_call_id":"lc_2"}}"#,
            "lc_2",
        ),
    ]
}

#[test]
fn a_cut_between_a_call_and_its_result_is_refused_naming_the_call_in_every_format() {
    for (format, call, result, id) in pairs() {
        assert_eq!(tool_ids(call).0, vec![id.to_owned()], "{format}: the call");
        assert_eq!(tool_ids(result).1, vec![id.to_owned()], "{format}: the result");
        let all = messages(&[r#"{"role":"user","content":"hi"}"#, call, result, r#""done""#]);
        match check_cut(&all, 2) {
            Err(CoreError::InvalidInput { path, message }) => {
                assert_eq!(path.as_deref(), Some("before"), "{format}");
                assert!(message.contains(id), "{format}: {message}");
            }
            other => panic!("{format}: a cut between call and result must be refused, got {other:?}"),
        }
        for fine in [0, 1, 3, 4] {
            assert_eq!(check_cut(&all, fine), Ok(()), "{format}: cut at {fine} keeps the pair together");
        }
    }
}

#[test]
fn keys_and_types_written_with_unicode_escapes_are_read_as_the_same_shapes() {
    // tool_ids passes over a text without "tool" or "call": the escaped forms must still be read.
    for (format, call, result, id) in pairs() {
        let escape = |text: &str| text.replace("tool", "\\u0074ool").replace("call", "c\\u0061ll");
        assert!(!escape(call).contains("tool") && !escape(call).contains("call"), "{format}");
        assert_eq!(tool_ids(&escape(call)).0, vec![id.to_owned()], "{format}: the escaped call");
        assert_eq!(tool_ids(&escape(result)).1, vec![id.to_owned()], "{format}: the escaped result");
    }
}

#[test]
fn messages_of_no_known_shape_never_block_a_cut() {
    let all = messages(&[
        r#""plain text""#,
        "42",
        "null",
        r#"{"role":"user","content":"no tools"}"#,
        r#"{"tool_call_id":17}"#,
        r#"{"tool_calls":"not a list"}"#,
        "[1,2,{\"tool_calls\":[{\"id\":\"nested\"}]}]",
        "{not json",
        "",
        r#"{"role":"tool","tool_call_id":"never-called"}"#,
    ]);
    for before in 0..=all.len() {
        assert_eq!(check_cut(&all, before), Ok(()), "cut at {before}");
    }
}

#[test]
fn strings_with_escapes_are_read_as_json_reads_them() {
    let call = r#"{"tool_calls":[{"id":"call_\u00e9\"q\\"}]}"#;
    assert_eq!(tool_ids(call).0, vec!["call_é\"q\\".to_owned()]);
    // Deep nesting and huge inputs do not crash the reader.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(tool_ids(&deep), (vec![], vec![]));
}

#[test]
fn compaction_replaces_a_prefix_in_the_fold_and_counts() {
    let mut state = SessionState::default();
    for n in 0..5 {
        state.apply(&Event::Message { agent: "a".into(), data: json(&n.to_string()) });
    }
    state.apply(&Event::Message { agent: "b".into(), data: json("\"b\"") });
    state.apply(&Event::Compacted { agent: "a".into(), before: 3, summary: messages(&["\"s\""]) });
    let a = state.agent("a").unwrap();
    assert_eq!(a.messages, messages(&["\"s\"", "3", "4"]));
    assert_eq!(a.compactions, 1);
    assert_eq!(state.agent("b").unwrap().messages, messages(&["\"b\""]), "other agents untouched");
    // `before` past the end compacts everything there is.
    state.apply(&Event::Compacted { agent: "a".into(), before: 99, summary: vec![] });
    assert!(state.agent("a").unwrap().messages.is_empty());
}

/// A snapshot built on, its state values known (a store that wrote it).
fn known(snapshot: &Snapshot) -> Previous<'_> {
    Previous { snapshot, values: Some(&snapshot.state) }
}

#[test]
fn the_snapshot_after_a_compaction_starts_its_segments_again_and_the_next_extends_them() {
    let mut state = SessionState::default();
    for n in 0..100 {
        state.apply(&Event::Message { agent: "a".into(), data: json(&n.to_string()) });
    }
    let (_, first) = next_snapshot(&SessionState::default(), &[], None, 1, 1, vec![1].into());
    let (_, old) = next_snapshot(&state, &[], Some(known(&first)), 10, 1, vec![1].into());
    let compact = Event::Compacted { agent: "a".into(), before: 98, summary: messages(&["\"sum\""]) };
    let (segment, snapshot) =
        next_snapshot(&state, std::slice::from_ref(&compact), Some(known(&old)), 11, 2, vec![2].into());
    let segment = segment.expect("the compacted view is written");
    assert_eq!(segment.agents, vec![("a".to_owned(), messages(&["\"sum\"", "98", "99"]))]);
    assert_eq!(snapshot.segments, vec![SnapshotRef { version: 11, token: 2 }], "the list starts again");
    assert_eq!(snapshot.count("a"), 3);
    // The next snapshot extends the new list with what was appended since.
    let mut after = state.clone();
    after.apply(&compact);
    let append = Event::Message { agent: "a".into(), data: json("100") };
    let (segment, next) =
        next_snapshot(&after, std::slice::from_ref(&append), Some(known(&snapshot)), 12, 3, vec![3].into());
    assert_eq!(segment.unwrap().agents, vec![("a".to_owned(), messages(&["100"]))]);
    assert_eq!(next.segments.len(), 2);
    // A snapshot that did not see the compaction (another count) cannot be extended.
    let (_, restarted) = next_snapshot(&after, std::slice::from_ref(&append), Some(known(&old)), 12, 3, vec![3].into());
    assert_eq!(restarted.segments, vec![SnapshotRef { version: 12, token: 3 }]);
}

#[test]
fn prune_keeps_the_newest_snapshot_at_or_below_before_and_what_it_names() {
    assert_eq!(oldest_kept(&[40, 20, 10], 25), Some(20));
    assert_eq!(oldest_kept(&[40, 20, 10], 40), Some(40));
    assert_eq!(oldest_kept(&[40, 20], 5), None);
    let kept_segments = [SnapshotRef { version: 10, token: 1 }, SnapshotRef { version: 20, token: 2 }];
    assert!(doomed('e', 19, 2, 20, None, &kept_segments), "a batch below the kept snapshot");
    assert!(!doomed('e', 20, 2, 20, None, &kept_segments), "the kept snapshot's own batch stays (history from it)");
    assert!(doomed('s', 10, 1, 20, None, &kept_segments));
    assert!(!doomed('g', 10, 1, 20, None, &kept_segments), "a segment a kept snapshot names stays");
    assert!(doomed('g', 10, 9, 20, None, &kept_segments), "a stale segment (another token) goes");
    // A prune that wrote its own snapshot of the kept version (token 5) replaces the one there.
    let written = Some(SnapshotRef { version: 20, token: 5 });
    let own = [SnapshotRef { version: 20, token: 5 }];
    assert!(doomed('s', 20, 2, 20, written, &own), "the snapshot it replaces goes");
    assert!(!doomed('s', 20, 5, 20, written, &own), "its own stays");
    assert!(doomed('g', 20, 2, 20, written, &own), "the replaced snapshot's segment goes");
    assert!(!doomed('g', 20, 5, 20, written, &own), "its own segment stays");
    assert!(!doomed('e', 20, 2, 20, written, &own), "the batch of the kept version stays (history from it)");
    assert_eq!(parse_record_key(&batch_key("a/b", 19, 2)), Some(('e', 19, 2)));
    assert_eq!(parse_record_key(&snapshot_key("x", 1 << 40, 7)), Some(('s', 1 << 40, 7)));
    assert_eq!(parse_record_key(&segment_key("x", 3, 4)), Some(('g', 3, 4)));
    assert_eq!(parse_record_key("h/x~"), None);
}

#[test]
fn ids_with_lone_surrogates_stay_distinct_and_pairs_decode() {
    // As JSON.stringify writes them: a lone surrogate escaped, a pair as two escapes.
    let a = r#"{"tool_calls":[{"id":"c\ud800"}]}"#;
    let b = r#"{"tool_calls":[{"id":"c\udbff"}]}"#;
    assert_ne!(tool_ids(a).0, tool_ids(b).0);
    assert_eq!(tool_ids(r#"{"tool_call_id":"x\ud83d\ude00"}"#).1, vec!["x😀".to_owned()]);
    let all = messages(&[a, r#"{"tool_call_id":"c\ud800"}"#, b, r#"{"tool_call_id":"c\udbff"}"#]);
    assert_eq!(check_cut(&all, 2), Ok(()), "a cut between two whole pairs");
    assert!(check_cut(&all, 3).is_err());
}

#[test]
fn a_call_and_its_result_are_matched_however_the_id_is_written_and_whichever_side_is_shorter() {
    // Each pair: the id as the call writes it, and as the result writes it (JSON escapes decoded).
    let ids = [
        ("call_7", "call_7"),
        ("call_7", "c\\u0061ll_7"),
        ("c\\u0061ll_7", "call_7"),
        ("a/b", "a\\/b"),
        ("q\\\"1", "q\\\"1"),
        ("q\\\\1", "q\\u005c1"),
        ("x\\ud800", "x\\ud800"),
        ("line\\n", "line\\u000a"),
    ];
    let filler = r#"{"role":"user","content":"a \"quoted\" call_7 a/b q\\1\nline"}"#;
    for (called, answered) in ids {
        let call = format!(r#"{{"tool_calls":[{{"id":"{called}"}}]}}"#);
        let result = format!(r#"{{"tool_call_id":"{answered}"}}"#);
        assert_eq!(tool_ids(&call).0, tool_ids(&result).1, "{called} / {answered}: one id");
        // The call alone below the cut (the results' side read by the calls' ids), then the
        // result alone after it (the calls' side read by the results' ids).
        let mut texts = vec![call.clone(), result.clone()];
        texts.extend(vec![filler.to_owned(); 6]);
        let mut reversed = vec![filler.to_owned(); 6];
        reversed.extend([call.clone(), result.clone()]);
        for (all, cut) in [(texts, 1), (reversed, 7)] {
            let all: Vec<Json> = all.iter().map(|t| json(t)).collect();
            assert!(check_cut(&all, cut).is_err(), "{called} / {answered}: a cut at {cut} separates the pair");
            assert_eq!(check_cut(&all, cut + 1), Ok(()), "{called} / {answered}: a cut after the pair");
        }
    }
}

#[test]
fn an_id_used_again_by_a_later_turn_pairs_turn_by_turn() {
    // Some models number their calls in every reply (`call_0`, `call_1`...): the same id comes back.
    let call = r#"{"tool_calls":[{"id":"call_0"}]}"#;
    let result = r#"{"tool_call_id":"call_0"}"#;
    let all = messages(&[call, result, call, result]);
    for (before, refused) in [(0, false), (1, true), (2, false), (3, true), (4, false)] {
        assert_eq!(check_cut(&all, before).is_err(), refused, "turn by turn, cut at {before}");
    }
    // Two calls of one id before their results: each result answers a call left open.
    let all = messages(&[call, call, result, result]);
    for (before, refused) in [(0, false), (1, true), (2, true), (3, true), (4, false)] {
        assert_eq!(check_cut(&all, before).is_err(), refused, "nested, cut at {before}");
    }
    // A result stored again (a sliding window rewrote it in place): it answers the call it answered
    // before, so a cut between the two results would leave the second without its call.
    let all = messages(&[call, result, r#""a1""#, result, r#""u2""#]);
    for (before, refused) in [(0, false), (1, true), (2, true), (3, true), (4, false), (5, false)] {
        assert_eq!(check_cut(&all, before).is_err(), refused, "stored again, cut at {before}");
    }
}

mod property {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever mix of formats, interleaving, unanswered calls, ids used again once their pair
        /// is whole, results stored again, and ids written with escapes: a cut is refused exactly
        /// when some call is before it and one of its results at or after it.
        #[test]
        fn a_cut_is_refused_exactly_when_it_separates_a_call_from_its_result(steps in proptest::collection::vec((0..4u8, 0..64usize, 0..6usize), 1..40)) {
            let shapes = pairs();
            let mut texts: Vec<String> = Vec::new();
            let mut open: Vec<(usize, usize, usize, usize)> = Vec::new(); // (id number, id kind, shape, call index)
            let mut spans: Vec<(usize, usize)> = Vec::new(); // (call index, result index)
            let mut free: Vec<(usize, usize)> = Vec::new(); // ids used again by later calls: (number, kind)
            let mut answered: Vec<(usize, usize, usize, usize)> = Vec::new(); // pairs whose result may be stored again
            // Ids as a message may write them: "id-1" is in "id-12"; an id with a slash, a quote or
            // a backslash; each written as it is or with escapes (`\u0069` for "i", `\/` for "/").
            let written = |number: usize, kind: usize, escape: usize| -> String {
                let escaped = |id: String| match escape {
                    0 => id,
                    1 => id.replacen('i', "\\u0069", 1),
                    _ => id.replace('/', "\\/"),
                };
                match kind {
                    0 if number % 2 == 1 => format!("id\\\"q\\\\{number}"),
                    0 => escaped(format!("id-{number}")),
                    _ => escaped(format!("id/{number}")),
                }
            };
            for (number, (action, pick, how)) in steps.into_iter().enumerate() {
                match action {
                    0 => texts.push(r#"{"role":"user","content":"filler \"quoted\"\nid-1 id/2 id-"}"#.to_owned()),
                    1 => {
                        let shape = pick % shapes.len();
                        let (_, call, _, id) = shapes[shape];
                        // One call in three uses again the id of a pair already whole.
                        let (n, kind) = if pick % 3 == 0 && !free.is_empty() { free.remove(pick % free.len()) } else { (number, how / 3) };
                        texts.push(call.replace(id, &written(n, kind, how % 3)));
                        open.push((n, kind, shape, texts.len() - 1));
                    }
                    2 if !open.is_empty() => {
                        let (n, kind, shape, at) = open.remove(pick % open.len());
                        let (_, _, result, id) = shapes[shape];
                        // The same id, with escapes of this step's own.
                        texts.push(result.replace(id, &written(n, kind, how % 3)));
                        spans.push((at, texts.len() - 1));
                        // An id is either used again by a later call, or has its result stored again.
                        if n % 3 == 0 { answered.push((n, kind, shape, at)) } else { free.push((n, kind)) }
                    }
                    3 if !answered.is_empty() => {
                        // A result stored again (rewritten): it answers the same call.
                        let (n, kind, shape, at) = answered[pick % answered.len()];
                        let (_, _, result, id) = shapes[shape];
                        texts.push(result.replace(id, &written(n, kind, how % 3)));
                        spans.push((at, texts.len() - 1));
                    }
                    _ => {}
                }
            }
            let all: Vec<Json> = texts.iter().map(|t| json(t)).collect();
            for before in 0..=all.len() {
                let separates = spans.iter().any(|&(call, result)| call < before && before <= result);
                prop_assert_eq!(check_cut(&all, before).is_err(), separates, "cut at {} of {:?}", before, texts);
            }
        }
    }
}
