// What AgentSessionSaver knows of a thread's state values without reading them from the engine again
// (each read crosses into wasm and parses the value; a turn reads the same records many times).
//
// A KnownState belongs to one invocation, which holds the thread's lease: nothing but its own writes
// change what it reads (a guard's turn, or one round of writes); or to one getTuple of a committed
// Session, which checks it in the synchronous run of its reads. It remembers, per agent:
// - values: key -> the value read or staged (undefined: the key is absent);
// - texts: channel -> [blob key, the whole stored form of that key's value] (deltas and rollups
//   resolved, channel-values.js): the latest value of each channel that it read or staged.
// It may fall back to `carried`, the KnownState of the thread's last invocation in this saver, when
// that one ended at the state this one began at (the saver checks the session's state id and a head:
// see AgentSessionSaver._knownAt): the state is the same, so is every value in it.
//
// Bound: what an invocation carries on is only what it used, the values it read or staged and the
// texts of the agents it touched (one per channel: about the size of the namespace's latest
// checkpoint); what it carried in and did not use is dropped. Across threads, the saver keeps one per
// thread (by session id, whether or not it still holds the thread's handle: `cacheThreads`), at most
// 1,024 of them and 8 Mi UTF-16 units of text in all (`units()`; least recently carried dropped first,
// and a state over a quarter of that never kept).

/** What `value()` answers for a key the state does not know. */
export const UNKNOWN = Symbol("unknown");

export class KnownState {
  /** @param {KnownState} [carried] what the thread's last invocation knew, at this one's starting state */
  constructor(carried) {
    this.agents = new Map(); // agent -> { values, texts } (see above)
    this.carried = carried;
  }

  /** The value of `key` of `agent`, or UNKNOWN. A carried value becomes this state's own. */
  value(agent, key) {
    const own = this.agents.get(agent);
    if (own !== undefined && own.values.has(key)) return own.values.get(key);
    const old = this.carried?.agents.get(agent);
    if (old === undefined || !old.values.has(key)) return UNKNOWN;
    const value = old.values.get(key);
    this.setValue(agent, key, value);
    return value;
  }

  setValue(agent, key, value) {
    this.#of(agent).values.set(key, value);
  }

  /** The whole stored form of the value at blob `key` of `channel`, or undefined. */
  text(agent, channel, key) {
    const entry = this.agents.get(agent)?.texts.get(channel) ?? this.carried?.agents.get(agent)?.texts.get(channel);
    return entry !== undefined && entry[0] === key ? entry[1] : undefined;
  }

  setText(agent, channel, key, whole) {
    this.#of(agent).texts.set(channel, [key, whole]);
  }

  /** A string `head` of an agent this state read or staged: what a later invocation checks to trust it. */
  marker() {
    for (const [agent, own] of this.agents) {
      const head = own.values.get("head");
      if (typeof head === "string") return { agent, head };
    }
    return undefined;
  }

  /** Forgets everything, the carried state too (something else staged writes on the invocation). */
  clear() {
    this.agents.clear();
    this.carried = undefined;
  }

  /** This state alone, to be carried to the next invocation: the texts of the agents it touched that it
   * did not replace are kept, with the values under their keys (a put reads the stored form of the
   * value it extends); the rest of what it carried in is dropped. */
  detached() {
    for (const [agent, own] of this.agents) {
      const old = this.carried?.agents.get(agent);
      if (old === undefined) continue;
      for (const [channel, entry] of old.texts) {
        if (own.texts.has(channel)) continue;
        own.texts.set(channel, entry);
        const [key] = entry;
        if (old.values.has(key) && !own.values.has(key)) own.values.set(key, old.values.get(key));
      }
    }
    this.carried = undefined;
    return this;
  }

  /** About how much this state holds: the UTF-16 units of the strings in its values and texts (the
   * stored texts of channel values are nearly all of it). */
  units() {
    const seen = new Set(); // a channel's text is often the very object staged as its value: once
    let units = 0;
    for (const own of this.agents.values()) {
      for (const value of own.values.values()) units += textUnits(value, seen);
      for (const [, whole] of own.texts.values()) units += textUnits(whole, seen);
    }
    return units;
  }

  #of(agent) {
    let own = this.agents.get(agent);
    if (own === undefined) this.agents.set(agent, (own = { values: new Map(), texts: new Map() }));
    return own;
  }
}

/** The UTF-16 units of the strings in a JSON value (keys left out: short, and the same in every record),
 * counting no object of `seen` again. */
function textUnits(value, seen) {
  if (typeof value === "string") return value.length;
  if (value === null || typeof value !== "object" || seen.has(value)) return 0;
  seen.add(value);
  let units = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) units += textUnits(child, seen);
  return units;
}
