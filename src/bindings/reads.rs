//! Engine data -> frozen JS values. A session's parsed messages are cached with the store's view of
//! it (shared by every Session object of the id, freed with the view) and grown by their new tail
//! only (messages are append-only), so a read after a turn parses two messages, not all of them.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

use crate::bindings::errors::JsResult;
use crate::bindings::host::{append_json_texts, freeze, from_json_text, make_error};
use crate::core::{AgentState, Json, SessionState, DEFAULT_AGENT};
use crate::engine::Session;

/// An agent's parsed messages, their frozen copy, and the first message they were parsed from.
type ParsedMessages = (Array, Option<Array>, Option<Json>);

/// Parsed, frozen reads of one session, valid for the version they were built at.
#[derive(Default)]
pub struct ReadCache {
    /// The engine's generation of the state these were parsed from.
    generation: Cell<u64>,
    /// Per agent: the parsed messages, their frozen copy, and the first message they were parsed
    /// from (a compaction replaces it: then they are parsed again, not grown).
    // Per agent; a session has few agents, so lists (one less map type in the .wasm).
    messages: RefCell<Vec<(String, ParsedMessages)>>,
    state: RefCell<Vec<(String, (u64, JsValue))>>,
}

/// The read cache kept with `session`'s shared view, emptied when the view was loaded anew.
fn read_cache(session: &Session) -> std::rc::Rc<ReadCache> {
    let cache = session.attachment(ReadCache::default);
    let generation = session.generation();
    if cache.generation.replace(generation) != generation {
        cache.messages.borrow_mut().clear();
        cache.state.borrow_mut().clear();
    }
    cache
}

pub fn parse(text: &str) -> JsResult<JsValue> {
    from_json_text(text).map_err(not_json)
}

/// The error of stored text that is not JSON.
fn not_json(cause: JsValue) -> JsValue {
    let fields = Object::new();
    let _ = Reflect::set(&fields, &"key".into(), &"(value)".into());
    let _ = Reflect::set(&fields, &"cause".into(), &cause);
    make_error("CORRUPT_RECORD", "a stored value is not valid JSON", &fields)
}

/// The committed messages of `agent`, as one frozen array shared between calls until it grows.
pub fn session_messages(session: &Session, agent: Option<&str>) -> JsResult<Array> {
    let agent = agent.unwrap_or(DEFAULT_AGENT);
    let state = session.state()?;
    let all = state.agent(agent).map_or(&[][..], |a| &a.messages[..]);
    let count = all.len();
    let cache = read_cache(session);
    let mut messages = cache.messages.borrow_mut();
    let index = match messages.iter().position(|(a, _)| a == agent) {
        Some(index) => index,
        None => {
            messages.push((agent.to_owned(), (Array::new(), None, None)));
            messages.len() - 1
        }
    };
    let (items, frozen, first) = &mut messages[index].1;
    let same_start = match (first.as_ref(), all.first()) {
        (Some(cached), Some(now)) => std::rc::Rc::ptr_eq(cached, now),
        _ => items.length() == 0,
    };
    if items.length() as usize > count || !same_start {
        items.set_length(0);
        *frozen = None;
    }
    *first = all.first().cloned();
    if items.length() as usize != count || frozen.is_none() {
        let tail = &all[items.length() as usize..];
        // One JSON array text: JS parses it as it arrives, without a copy to add the brackets.
        let mut texts = String::with_capacity(tail.iter().map(|text| text.len() + 1).sum::<usize>() + 2);
        texts.push('[');
        for (index, text) in tail.iter().enumerate() {
            if index > 0 {
                texts.push(',');
            }
            texts.push_str(text);
        }
        texts.push(']');
        let length = items.length();
        match append_json_texts(items, &texts) {
            // Each text is one JSON value (they were written by JSON.stringify): a count that does
            // not add up means a stored text was not.
            Ok(copy) if items.length() as usize == count => *frozen = Some(copy),
            Ok(_) => {
                items.set_length(length);
                return Err(not_json(JsValue::from_str("a stored message is not one JSON value")));
            }
            Err(cause) => {
                items.set_length(length);
                return Err(not_json(cause));
            }
        }
    }
    Ok(frozen.clone().unwrap_or_default())
}

/// The committed state of `agent` as a frozen object, rebuilt once per version.
pub fn session_state(session: &Session, agent: Option<&str>) -> JsResult<JsValue> {
    let agent = agent.unwrap_or(DEFAULT_AGENT);
    let version = session.version();
    let values = session.values(Some(agent))?;
    let cache = read_cache(session);
    let mut states = cache.state.borrow_mut();
    let found = states.iter().position(|(a, _)| a == agent);
    if let Some((_, (at, object))) = found.map(|index| &states[index]) {
        if *at == version {
            return Ok(object.clone());
        }
    }
    let object = state_object(&values)?;
    match found {
        Some(index) => states[index].1 = (version, object.clone()),
        None => states.push((agent.to_owned(), (version, object.clone()))),
    }
    Ok(object)
}

/// A frozen object of the state values. Built with `Object.fromEntries`, which defines own
/// properties: a plain assignment of a `"__proto__"` key would set the prototype instead.
pub fn state_object(values: &BTreeMap<String, Json>) -> JsResult<JsValue> {
    let entries = Array::new();
    for (key, text) in values {
        entries.push(&Array::of2(&JsValue::from_str(key), &parse(text)?));
    }
    Ok(freeze(&Object::from_entries(&entries)?.into()))
}

pub fn json_array<'a>(texts: impl IntoIterator<Item = &'a Json>) -> JsResult<Array> {
    let array = Array::new();
    for text in texts {
        array.push(&parse(text)?);
    }
    Ok(array)
}

/// Messages of `agent` in a folded state (for views of old versions).
pub fn agent_of<'a>(state: &'a SessionState, agent: Option<&str>) -> Option<&'a AgentState> {
    state.agent(agent.unwrap_or(DEFAULT_AGENT))
}
