// Live turns in the framework drop-ins: a guarded run gets the invocation's `signal` as its abort
// signal (so `session.stop()` from any tab, worker or process reaches the model call), and forwards
// its stream events to the turn's live log with `inv.emit()` (so `session.follow()` shows the turn as
// it happens). Plain JS over the public API, shared by openai-agents.js, langgraph.js and strands/.
import { hasCode } from "./session-handle.js";

/**
 * The JSON form of a framework event, as `JSON.stringify` writes it (its `toJSON` applied, `undefined`
 * and functions left out); undefined when it has none (a cycle, a BigInt).
 */
export function jsonForm(value) {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The projection an `emit` option selects: `false` forwards nothing (null), a function is used as it
 * is, `true` or `undefined` is the drop-in's default `fallback`.
 */
export function projection(emit, fallback) {
  if (emit === false) return null;
  if (emit === undefined || emit === true) return fallback;
  if (typeof emit === "function") return emit;
  throw new TypeError("the `emit` option must be a boolean or a function of the stream event");
}

/**
 * A function that forwards one stream event to the live log of `inv`: `project(event)`, then
 * `inv.emit(part)` unless the projection is `undefined`. A part the store refuses (not JSON, over
 * `limits.maxMessageBytes`) and a part emitted after the invocation ended (committed, aborted, lease
 * lost) are left out without failing the run: the live log is a view of the turn, and what the turn
 * commits is the record. Returns the part's seq, or undefined when nothing was emitted. With
 * `project` null (forwarding turned off) it does nothing.
 */
export function forwarder(inv, project) {
  if (project === null) return () => undefined;
  return (event) => {
    const part = project(event);
    if (part === undefined) return undefined;
    try {
      return inv.emit(part);
    } catch (error) {
      if (hasCode(error, "INVALID_INPUT", "LIMIT_EXCEEDED", "INVALID_TRANSITION", "LEASE_LOST")) return undefined;
      throw error;
    }
  };
}

/** An AbortSignal that aborts, with its reason, as soon as any of `signals` (undefined ones skipped) does. */
export function anySignal(...signals) {
  const list = signals.filter((signal) => signal !== undefined && signal !== null);
  if (list.length <= 1) return list[0];
  if (typeof AbortSignal.any === "function") return AbortSignal.any(list);
  const controller = new AbortController();
  const onAbort = (event) => {
    for (const signal of list) signal.removeEventListener("abort", onAbort);
    controller.abort(event.target.reason);
  };
  for (const signal of list) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener("abort", onAbort, { once: true });
  }
  return controller.signal;
}

/**
 * What a guarded run rejects with when it failed because the invocation's `signal` aborted: the
 * signal's reason (a `StopRequestedError` after `session.stop()`, a `LeaseLostError` when the lease
 * was lost) instead of the framework's generic abort error, and instead of the `LeaseLostError` that
 * refuses the commit of a turn a stop fenced (its grace ran out, or `graceMs: 0`), so that a stop
 * reads as a stop either way; any other error as it is. Read before the invocation is aborted.
 */
export function stopError(error, signal) {
  if (!signal?.aborted || signal.reason === undefined) return error;
  if (error === signal.reason || isAbortError(error)) return signal.reason;
  if (hasCode(error, "LEASE_LOST") && hasCode(signal.reason, "STOP_REQUESTED")) return signal.reason;
  return error;
}

function isAbortError(error) {
  if (error === null || typeof error !== "object") return false;
  // DOMException / the SDKs' own AbortError; LangGraph's `new Error("Abort")`.
  return error.name === "AbortError" || error.message === "Abort" || error.message === "Aborted";
}
