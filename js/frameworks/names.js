// Names for agent-session: its session ids, agent names and state keys are 1 to 256 UTF-8 bytes of
// well-formed text, and longer ones are refused (ValidationError). The frameworks put no bound on
// theirs (LangGraph thread ids, Strands session ids), so a drop-in replaces a name that would not do
// by a SHA-256 of it, which the writer and every reader derive alike, synchronously.
import { toBase64Url, utf8Length } from "../runtime.js";
import { sha256 } from "./langgraph/sha256.js";

/** agent-session's bound on ids, agent names and state keys (MAX_NAME_BYTES of src/core/limits.rs). */
export const MAX_NAME_BYTES = 256;
/** Marks a hashed name; a value that starts with it is hashed too, so no raw name looks hashed. */
export const HASHED = "\u0000#";

function wellFormed(s) {
  if (typeof s.isWellFormed === "function") return s.isWellFormed();
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/** SHA-256 of a string's UTF-16 code units (so lone surrogates hash distinctly), base64url. */
export function hashString(s) {
  const bytes = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    bytes[2 * i] = c & 0xff;
    bytes[2 * i + 1] = c >> 8;
  }
  return toBase64Url(sha256(bytes));
}

/** `prefix + value` when that is a valid agent-session name (1..256 UTF-8 bytes), else a hashed form. */
export function nameFor(prefix, value, hashedPrefix) {
  const raw = prefix + value;
  if (utf8Length(raw) <= MAX_NAME_BYTES && wellFormed(raw) && !value.startsWith(HASHED)) return raw;
  return hashedPrefix + hashString(value);
}

/** The agent-session id of a framework's own session id: itself, or a hashed form when it is empty,
 * too long for one or not well-formed text (`MemorySession` takes any string); anything but a string
 * as it is (the store refuses it). */
export function sessionIdFor(id) {
  if (typeof id !== "string") return id;
  return id === "" ? HASHED + hashString(id) : nameFor("", id, HASHED);
}
