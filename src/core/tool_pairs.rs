//! The tool-pair rule of compaction: a cut may not separate a tool call from its result. A pure
//! function of the messages' JSON texts, which it reads with a small JSON reader of its own (the core
//! ships no JSON library: message bodies are otherwise never interpreted).
//!
//! Recognised shapes (a message of no known shape never blocks a cut):
//! - OpenAI Chat Completions: `tool_calls[].id` / `tool_call_id`
//! - OpenAI Responses items: `function_call` / `function_call_output` by `call_id`, and every other
//!   `*_call` / `*_output` pair (`computer_call`, `shell_call`, `apply_patch_call`, `custom_tool_call`...)
//! - OpenAI Agents JS items: `function_call` / `function_call_result` by `callId`, and every other
//!   `*_call` / `*_result` or `*_output` pair (`computer_call_result`, `shell_call_output`...)
//! - Anthropic content blocks: `tool_use.id` / `tool_result.tool_use_id` (and `server_tool_use`,
//!   `mcp_tool_use` / `*tool_result`)
//! - Bedrock and Strands content blocks: `toolUse.toolUseId` / `toolResult.toolUseId`
//! - LangChain messages: `tool_calls[].id` / `tool_call_id`, plain or serialized under `kwargs`

use crate::core::error::CoreError;
use crate::core::record::Json;

/// Checks that replacing the first `before` of `messages` keeps every tool call with its result: a
/// result after the cut whose call is before it is a `ValidationError` (path `before`) naming the id.
/// A result after the cut answers a call after the cut when one of its id was made before it and
/// not answered yet, so an id used again by a later turn (models that number their calls `call_0`,
/// `call_1`... in every reply) pairs turn by turn; any other result of an id called before the cut
/// is that call's (a result stored again, rewritten, answers the call it answered before).
pub fn check_cut(messages: &[Json], before: usize) -> Result<(), CoreError> {
    let (below, above) = messages.split_at(before.min(messages.len()));
    // The shorter side first: when it names no ids of its kind (calls below the cut, results above
    // it that answer no call above it), the other side need not be read at all. Otherwise the other
    // side's messages are read only where one of those ids may be written: a sliding window's cut of
    // a tool call and its result, or a summary of all but the last few messages, reads a few.
    let (called, unanswered) = if below.len() <= above.len() {
        let called = calls_in(below, None);
        if called.is_empty() {
            return Ok(());
        }
        let unanswered = results_without_calls(above, Wanted::new(&called).as_ref());
        (called, unanswered)
    } else {
        let unanswered = results_without_calls(above, None);
        if unanswered.is_empty() {
            return Ok(());
        }
        (calls_in(below, Wanted::new(&unanswered).as_ref()), unanswered)
    };
    if let Some(id) = unanswered.into_iter().find(|id| called.contains(id)) {
        return Err(CoreError::invalid(
            Some("before"),
            format!(
                "compacting before {} would separate tool call \"{id}\" (before the cut) from its result (after it); cut elsewhere, or pass force: true",
                below.len()
            ),
        ));
    }
    Ok(())
}

/// The ids the `texts` call, in order. With `wanted`, only the texts that may hold one of its ids are
/// read (the others can call none of them). Lists, not sets: a handful of ids, and one less
/// collection type in the .wasm.
fn calls_in(texts: &[Json], wanted: Option<&Wanted>) -> Vec<String> {
    let mut called = Vec::new();
    for text in texts {
        if may_be_read(wanted, text) {
            called.extend(tool_ids(text).0);
        }
    }
    called
}

/// The ids of the results in `texts` that answer no call made before them in `texts` (a message's
/// results answer calls made before it: its own calls come after them), in order. With `wanted`,
/// only the texts that may hold one of its ids are read (the others can neither call nor answer one).
fn results_without_calls(texts: &[Json], wanted: Option<&Wanted>) -> Vec<String> {
    let mut open: Vec<String> = Vec::new();
    let mut unanswered = Vec::new();
    for text in texts {
        if !may_be_read(wanted, text) {
            continue;
        }
        let (calls, results) = tool_ids(text);
        for id in results {
            // Among the calls of one id, which one a result takes does not matter.
            match open.iter().position(|call| *call == id) {
                Some(at) => drop(open.swap_remove(at)),
                None => unanswered.push(id),
            }
        }
        open.extend(calls);
    }
    unanswered
}

/// Whether `text` is to be read: always without `wanted`, else when it may hold one of its ids.
fn may_be_read(wanted: Option<&Wanted>, text: &str) -> bool {
    wanted.is_none_or(|wanted| wanted.may_be_in(text))
}

/// Ids looked for in the JSON text of messages, none empty nor with a quote, a backslash or a control
/// character (those are written escaped, or match everywhere: every text is read for them).
struct Wanted<'a> {
    ids: &'a [String],
    /// The bytes to stop at: the last byte of each id (where an id written as it is ends), and the
    /// backslash (where an escape starts).
    anchors: Vec<u8>,
}

/// Eight copies of the byte 1.
const ONES: u64 = u64::from_le_bytes([1; 8]);

impl<'a> Wanted<'a> {
    fn new(ids: &'a [String]) -> Option<Wanted<'a>> {
        let mut anchors = vec![b'\\'];
        for id in ids {
            let plain = id.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
            let last = *id.as_bytes().last().filter(|_| plain)?;
            if !anchors.contains(&last) {
                anchors.push(last);
            }
        }
        Some(Wanted { ids, anchors })
    }

    /// Whether `text` may hold one of the ids in a JSON string: as it is, or with an escape that the
    /// reader decodes to such a character (`\u0041`, `\/`, and any `\x` it reads as x). The escapes of
    /// what the ids cannot hold (`\"`, `\\`, `\n`, `\t`, `\r`, `\b`, `\f`: quotes and line breaks in a
    /// message's text) do not count. Eight bytes at a step: only a word holding an anchor byte is
    /// looked at byte by byte (a message of a few hundred bytes costs well under a microsecond).
    fn may_be_in(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(word) = bytes.get(i..i + 8) {
            let word = word.try_into().map_or(0, u64::from_le_bytes);
            // The classic test for a zero byte in `word ^ anchor * ONES` (exact when it says none).
            let holds = |anchor: &u8| {
                let x = word ^ (*anchor as u64 * ONES);
                x.wrapping_sub(ONES) & !x & (ONES << 7) != 0
            };
            if self.anchors.iter().any(holds) && (i..i + 8).any(|at| self.found_at(bytes, at)) {
                return true;
            }
            i += 8;
        }
        (i..bytes.len()).any(|at| self.found_at(bytes, at))
    }

    /// Whether an escape starts at `i`, or an id written as it is ends there.
    fn found_at(&self, bytes: &[u8], i: usize) -> bool {
        match bytes[i] {
            b'\\' => !matches!(bytes.get(i + 1), Some(b'"' | b'\\' | b'n' | b't' | b'r' | b'b' | b'f')),
            // (The last byte first: a comparison call only where an id may end.)
            byte => {
                self.ids.iter().any(|id| id.as_bytes().last() == Some(&byte) && bytes[..=i].ends_with(id.as_bytes()))
            }
        }
    }
}

/// The tool-call ids a message makes and the ids it answers.
pub fn tool_ids(text: &str) -> (Vec<String>, Vec<String>) {
    let mut ids = (Vec::new(), Vec::new());
    if !may_name_tools(text) {
        return ids;
    }
    if let Some(value) = Reader::new(text).value(0) {
        collect(&value, &mut ids, 0);
    }
    ids
}

/// Whether `text` can hold a shape `collect` recognises: each one has a key or a type containing
/// "tool" or "call", written as it is or with `\u` escapes. Reading a message costs microseconds, and
/// a compaction reads every message before its cut: most messages (plain text) are passed over.
fn may_name_tools(text: &str) -> bool {
    // A byte loop, not `str::contains` (its substring searcher costs the .wasm 1 KB) nor slice windows
    // (a comparison call per byte).
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|i| match bytes[i] {
        b't' => bytes[i..].starts_with(b"tool"),
        b'c' => bytes[i..].starts_with(b"call"),
        b'\\' => bytes.get(i + 1) == Some(&b'u'),
        _ => false,
    })
}

fn collect(value: &Value, ids: &mut (Vec<String>, Vec<String>), depth: usize) {
    let Value::Object(_) = value else { return };
    if depth > 2 {
        return;
    }
    if let Some(kwargs) = value.get("kwargs") {
        collect(kwargs, ids, depth + 1);
    }
    let (calls, results) = ids;
    if let Some(Value::Array(tool_calls)) = value.get("tool_calls") {
        calls.extend(tool_calls.iter().filter_map(|call| call.get("id")?.string()));
    }
    results.extend(value.get("tool_call_id").and_then(Value::string));
    let id = || value.get("call_id").or_else(|| value.get("callId")).and_then(Value::string);
    // Every kind of tool call item, not only functions: `computer_call`, `shell_call`,
    // `apply_patch_call`, `custom_tool_call`, `tool_search_call`... answered by an item of the same
    // kind ending in `_output` (the Responses API) or `_result` (Agents JS), by the same call id.
    match value.get("type").and_then(Value::string).as_deref() {
        Some(kind) if kind.ends_with("_call") => calls.extend(id()),
        Some(kind) if kind.ends_with("_output") || kind.ends_with("_result") => results.extend(id()),
        _ => {}
    }
    if let Some(Value::Array(blocks)) = value.get("content") {
        for block in blocks {
            // `tool_use` and the server tools' `server_tool_use`, `mcp_tool_use`; their results
            // `tool_result`, `web_search_tool_result`, `mcp_tool_result`...
            match block.get("type").and_then(Value::string).as_deref() {
                Some(kind) if kind.ends_with("tool_use") => calls.extend(block.get("id").and_then(Value::string)),
                Some(kind) if kind.ends_with("tool_result") => {
                    results.extend(block.get("tool_use_id").and_then(Value::string))
                }
                _ => {}
            }
            calls.extend(block.get("toolUse").and_then(|b| b.get("toolUseId")).and_then(Value::string));
            results.extend(block.get("toolResult").and_then(|b| b.get("toolUseId")).and_then(Value::string));
        }
    }
}

/// A JSON value, as far as the rule needs it (numbers and literals are not kept).
#[derive(Debug)]
enum Value {
    Other,
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn string(&self) -> Option<String> {
        match self {
            Value::String(text) => Some(text.clone()),
            _ => None,
        }
    }
}

/// Nesting the reader follows: a message nested deeper is read as of no known shape (the reader
/// recurses, and the stack of a WebAssembly instance is small).
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Reader<'a> {
        Reader { bytes: text.as_bytes(), at: 0 }
    }

    fn skip_space(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// The next value, or `None` for text that is not JSON (never panics).
    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match *self.bytes.get(self.at)? {
            b'"' => self.string().map(Value::String),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Value::Array(items))
            }
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.skip_space();
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        members.push((key, self.value(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Value::Object(members))
            }
            _ => {
                // A number, true, false or null: skipped to the next delimiter.
                let start = self.at;
                while let Some(byte) = self.bytes.get(self.at) {
                    if matches!(byte, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                (self.at > start).then_some(Value::Other)
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = std::str::from_utf8(self.bytes.get(self.at..self.at + 4)?).ok()?;
        self.at += 4;
        u32::from_str_radix(hex, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        if self.bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escaped = *self.bytes.get(self.at)?;
                    self.at += 1;
                    match escaped {
                        b'u' => {
                            let unit = self.hex4()?;
                            let pair = (0xD800..0xDC00).contains(&unit)
                                && self.bytes.get(self.at..self.at + 2) == Some(b"\\u")
                                && {
                                    let at = self.at;
                                    self.at += 2;
                                    let low = self.hex4();
                                    self.at = at;
                                    low.is_some_and(|low| (0xDC00..0xE000).contains(&low))
                                };
                            let c = if pair {
                                self.at += 2;
                                let low = self.hex4()?;
                                char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                            } else {
                                char::from_u32(unit)
                            };
                            match c {
                                Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                                // A lone surrogate has no UTF-8 form: kept as written, so that two ids
                                // that differ only in one are still two ids.
                                None => out.extend_from_slice(format!("\\u{unit:04x}").as_bytes()),
                            }
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}
