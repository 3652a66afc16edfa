// How AgentSessionSaver stores a channel value that grows by appending (`messages` with its concat
// reducer), so that neither a put's write nor any one record grows with the thread.
//
// A value is stored in one of four forms, each a state value under the blob's key:
// - whole: { t, s } (JSON or other UTF-8 text) or { t, b } (base64 bytes);
// - delta: { t, base, at, tail, n }, read as text(base).slice(0, at) + tail, when the new text extends
//   the text of the value it replaces (the parent checkpoint's value of that channel, at key `base`)
//   past all but its last character (the closing `]` or `}`); `n` counts the deltas down to a value
//   that is not a delta, at most MAX_CHAIN, so that a read follows at most MAX_CHAIN deltas;
// - rollup: { t, p, o, x } where the next delta would be the (MAX_CHAIN + 1)th (a value of at least
//   MIN_ROLLUP units; a shorter one is stored whole there): read as the regions
//   `p` = [[key, from, to], ...] of other stored values, concatenated (`o` UTF-16 units in all), then
//   `x`. Before rollups, that version was stored whole: every MAX_CHAIN + 1 versions the whole text
//   again, and a thread stopped at the 1 MiB bound of a state value (limits.maxStateValueBytes).
// A region is the part [from, to) of a stored value's text that the value holds itself: all of a whole
// value's text, a delta's tail ([at, at + tail.length)), a rollup's x ([o, o + x.length)). A rollup
// holds in `x` the text after its last region, and takes into it the newest regions while each one is
// at most twice what it holds and it stays within MAX_PIECE: regions grow towards the oldest, so a
// rollup names about log2(value / tail) of them plus one per MAX_PIECE of the value, and each unit of
// text is written again about log2(MAX_PIECE / tail) times in all.
// Stored values are never changed: a put of a checkpoint already stored keeps its values whole (its
// text unchanged), so every region read through its key stays what it was.
// Deltas and rollups have no `s`: a saver older than them fails on them instead of returning a part.

/** Values shorter than this (UTF-16 units of their text) are always stored whole. */
const MIN_DELTA = 512;
/** At most this many deltas between a stored value and the whole value or rollup it is read from. */
const MAX_CHAIN = 16;
/** The most text (UTF-16 units) a rollup takes into its own `x` from the regions it would name. */
const MAX_PIECE = 256 * 1024;
/** A value shorter than this is stored whole where a rollup would be: as cheap to write, and no
 * reads of the values it extends (a rollup needs them). */
const MIN_ROLLUP = 64 * 1024;

const isDelta = (blob) => blob != null && typeof blob.base === "string";
const isRollup = (blob) => blob != null && Array.isArray(blob.p) && typeof blob.x === "string";

/** The text of a stored value's own region [from, to) (see above); undefined when it holds no such region. */
function regionOf(read, key, from, to) {
  const stored = read(key);
  let text;
  let start;
  if (typeof stored?.s === "string") [text, start] = [stored.s, 0];
  else if (isRollup(stored)) [text, start] = [stored.x, stored.o];
  else if (isDelta(stored) && typeof stored.tail === "string") [text, start] = [stored.tail, stored.at];
  else return undefined;
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= start && to >= from && to - start <= text.length)) return undefined;
  return text.slice(from - start, to - start);
}

/** A rollup's whole text as pieces to join; undefined when a region it names is missing or malformed. */
function rollupPieces(read, rollup) {
  const pieces = [];
  let length = 0;
  for (const region of rollup.p) {
    if (!Array.isArray(region)) return undefined;
    const [key, from, to] = region;
    const text = regionOf(read, key, from, to);
    if (text === undefined) return undefined;
    pieces.push(text);
    length += text.length;
  }
  if (length !== rollup.o) return undefined;
  pieces.push(rollup.x);
  return pieces;
}

/** The stored form { t, s } or { t, b } of a blob read through `read(key)`, deltas and rollups
 * resolved; undefined when a value it is read from is missing or malformed. */
export function wholeBlob(read, blob) {
  if (!isDelta(blob) && !isRollup(blob)) return blob;
  const chain = [];
  let rec = blob;
  while (isDelta(rec)) {
    if (chain.length > MAX_CHAIN) return undefined;
    chain.push(rec);
    rec = read(rec.base);
  }
  // The text as pieces (a rollup's regions, or the whole text), cut and extended by each delta in
  // turn, joined once (slicing a concatenation would copy the whole text at every delta).
  const pieces = isRollup(rec) ? rollupPieces(read, rec) : typeof rec?.s === "string" ? [rec.s] : undefined;
  if (pieces === undefined) return undefined;
  let length = 0;
  for (const piece of pieces) length += piece.length;
  for (let i = chain.length - 1; i >= 0; i--) {
    const { at, tail } = chain[i];
    if (!(at >= 0 && at <= length) || typeof tail !== "string") return undefined;
    while (pieces.length > 0 && length - pieces[pieces.length - 1].length >= at) length -= pieces.pop().length;
    if (length > at) {
      const last = pieces.length - 1;
      pieces[last] = pieces[last].slice(0, pieces[last].length - (length - at));
    }
    pieces.push(tail);
    length = at + tail.length;
  }
  return { t: blob.t, s: pieces.length === 1 ? pieces[0] : pieces.join("") };
}

/** The regions whose concatenation is the whole text of the value `stored` at `key` (a delta's
 * through the values it extends, at most MAX_CHAIN + 1 of them). */
function regionsOf(read, key, stored) {
  if (typeof stored.s === "string") return [[key, 0, stored.s.length]];
  if (isRollup(stored)) return stored.x.length > 0 ? [...stored.p, [key, stored.o, stored.o + stored.x.length]] : [...stored.p];
  const regions = cut(regionsOf(read, stored.base, read(stored.base)), stored.at);
  regions.push([key, stored.at, stored.at + stored.tail.length]);
  return regions;
}

/** The regions of the first `at` units of the text that `regions` make up. */
function cut(regions, at) {
  const out = [];
  let length = 0;
  for (const [key, from, to] of regions) {
    if (length >= at) break;
    const take = Math.min(to - from, at - length);
    out.push([key, from, from + take]);
    length += take;
  }
  return out;
}

/** The rollup of `blob` (whole, { t, s }) whose text is the first `at` units of the value `previous`
 * at `previousKey`, then blob.s.slice(at). */
function rollupOf(read, previousKey, previous, blob, at) {
  const regions = cut(regionsOf(read, previousKey, previous), at);
  let o = at;
  while (regions.length > 0) {
    const [, from, to] = regions[regions.length - 1];
    const held = blob.s.length - o;
    if (to - from > 2 * held || held + (to - from) > MAX_PIECE) break;
    regions.pop();
    o -= to - from;
  }
  return { t: blob.t, p: regions, o, x: blob.s.slice(o) };
}

/** What to store for `blob` (a new channel value, { t, s } or { t, b }) whose previous version is stored
 * at `previousKey`: a delta or a rollup when its text extends that version's, else `blob` itself.
 * `wholeOf(key)`: the whole stored form of the value at `key`, as wholeBlob reads it (the saver's
 * ThreadView.whole, which may know it already). */
export function storedFormOf(read, previousKey, blob, wholeOf) {
  if (typeof blob.s !== "string" || blob.s.length < MIN_DELTA) return blob;
  const previous = read(previousKey);
  if (previous == null || previous.t !== blob.t) return blob;
  const n = isDelta(previous) ? previous.n + 1 : 1;
  if (!(n <= MAX_CHAIN) && blob.s.length < MIN_ROLLUP) return blob;
  const text = wholeOf(previousKey)?.s;
  if (typeof text !== "string") return blob;
  const at = text.length - 1;
  // (Equal slices compare as memory; startsWith compares character by character.)
  if (at < blob.s.length >> 1 || blob.s.length <= at || blob.s.slice(0, at) !== text.slice(0, at)) return blob;
  if (n <= MAX_CHAIN) return { t: blob.t, base: previousKey, at, tail: blob.s.slice(at), n };
  return rollupOf(read, previousKey, previous, blob, at);
}
