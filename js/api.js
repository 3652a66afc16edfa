// The public API: the wasm-bindgen classes and the error classes, plus the members that a wasm-bindgen
// class cannot declare itself (Symbol-named methods, and a method resolving to `this`).
import { Invocation, Session, SessionStore } from "./wasm/agent_session.js";

export { SessionStore, Session, Invocation } from "./wasm/agent_session.js";
export {
  AgentSessionError,
  ConcurrencyError,
  LeaseLostError,
  ConflictError,
  InvalidTransitionError,
  SessionClosedError,
  SessionExpiredError,
  NotFoundError,
  ValidationError,
  LimitExceededError,
  CorruptRecordError,
  StorageError,
  UnsafeStoreError,
  StoreClosedError,
  StopRequestedError,
  SchemaVersionError,
  MigrationError,
} from "./wasm/errors.js";

const asyncDispose = Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose");
Object.defineProperty(Invocation.prototype, asyncDispose, {
  value: function () {
    return this.dispose();
  },
  configurable: true,
  writable: true,
});

const dispose = Symbol.dispose ?? Symbol.for("Symbol.dispose");
Object.defineProperty(Session.prototype, dispose, {
  value: function () {
    this.dispose();
  },
  configurable: true,
  writable: true,
});

Object.defineProperty(Session.prototype, "refresh", {
  value: async function () {
    await this.refreshView();
    return this;
  },
  configurable: true,
  writable: true,
});

/**
 * Moves the wasm export `name` of the Invocation class to the registered symbol
 * `agent-session.<name>`: a link of the drop-ins (js/frameworks), not public API. A registered symbol, so
 * that a drop-in finds it on an invocation of another copy of this package too.
 */
function linkForDropIns(name) {
  Object.defineProperty(Invocation.prototype, Symbol.for(`agent-session.${name}`), {
    value: Invocation.prototype[name],
    configurable: true,
    writable: true,
  });
  delete Invocation.prototype[name];
}

// The drop-ins' stop link: `invocation[onStop](callback)` calls `callback(reason)` once on a stop or a
// lost lease, never at the end, without the AbortController that `signal` makes.
linkForDropIns("onStop");
// The drop-ins' refusal of a second guard of a thread that one of their guards holds:
// `invocation[busyRefusal]()` is the ConcurrencyError another store's begin would get (the lease's owner
// and the time until it ends, API.md).
linkForDropIns("busyRefusal");

// The drop-ins' end of a guarded turn that succeeded at its last checkpoint with nothing left to
// write: `invocation[endAtCheckpoint]()` releases as `abort()` does, and followers see the turn end
// `committed` (not `aborted`), without an empty version. Not public API, as onStop; one wasm export
// (abort's flag) serves both.
const endAtCheckpoint = Symbol.for("agent-session.endAtCheckpoint");
const abortOrEnd = Invocation.prototype.abort;
Object.defineProperty(Invocation.prototype, "abort", {
  value: function abort() {
    return abortOrEnd.call(this, false);
  },
  configurable: true,
  writable: true,
});
Object.defineProperty(Invocation.prototype, endAtCheckpoint, {
  value: function () {
    return abortOrEnd.call(this, true);
  },
  configurable: true,
  writable: true,
});

// `inv.session` is the Session that began the invocation (with `begin()` or `invoke()`), the same object
// at every read: wasm-bindgen's getter makes a new wrapper each time, so `inv.session === session` and
// even `inv.session === inv.session` were false (API.md types it `readonly session: Session`). The
// views are one either way: every Session of an id in a store shares its cached view.
const beganBy = Symbol("agent-session.beganBy");
const sessionWrapper = Object.getOwnPropertyDescriptor(Invocation.prototype, "session").get;
Object.defineProperty(Invocation.prototype, "session", {
  get: function () {
    return (this[beganBy] ??= sessionWrapper.call(this));
  },
  configurable: true,
});
const beginOnly = Session.prototype.begin;
Object.defineProperty(Session.prototype, "begin", {
  value: function begin(options) {
    return beginOnly.call(this, options).then((inv) => {
      inv[beganBy] = this;
      return inv;
    });
  },
  configurable: true,
  writable: true,
});
const invokeOnly = Session.prototype.invoke;
Object.defineProperty(Session.prototype, "invoke", {
  value: function invoke(fn, options) {
    // Anything but a function goes through as it is, for the engine's own refusal.
    const body = typeof fn === "function" ? (inv) => ((inv[beganBy] = this), fn(inv)) : fn;
    return invokeOnly.call(this, body, options);
  },
  configurable: true,
  writable: true,
});

const liveFollower = Session.prototype.follow;
Object.defineProperty(Session.prototype, "follow", {
  value: function (options) {
    // Validates options now; the reads start with the first next().
    return following(liveFollower.call(this, options), options?.signal);
  },
  configurable: true,
  writable: true,
});

/**
 * The iterator of follow(): the events of `follower` until `signal` aborts, the session ends, or the
 * caller breaks out. Its `return()` (a `break`, or a server's disconnect handler) also ends a `next()`
 * still waiting for news, which an async generator's would only queue behind it (a follower of an
 * idle session went on polling until the next commit).
 */
function following(follower, signal) {
  const ended = new AbortController();
  const events = followEvents(follower, signal, ended.signal);
  return {
    next: () => events.next(),
    return(value) {
      ended.abort();
      return events.return(value);
    },
    throw(error) {
      ended.abort();
      return events.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

async function* followEvents(follower, signal, ended) {
  const stopped = () => ended.aborted || signal?.aborted === true;
  try {
    while (!stopped()) {
      const events = await follower.poll();
      if (events === null) return;
      for (const event of events) {
        if (stopped()) return;
        yield event;
      }
      if (events.length === 0) await waitUnlessStopped(follower.wait(), signal, ended);
    }
  } finally {
    follower.free();
  }
}

/**
 * `wait`, or less once `signal` or `ended` aborts. The listeners go when it settles: a signal shared
 * by many followers (a server's shutdown signal), or one follower's over thousands of waits, kept
 * one listener and one reaction per wait before.
 */
function waitUnlessStopped(wait, signal, ended) {
  return new Promise((resolve) => {
    if (signal?.aborted || ended.aborted) return resolve();
    const forget = signal === undefined ? undefined : whenAborted(signal, done);
    function done() {
      forget?.();
      ended.removeEventListener("abort", done);
      resolve();
    }
    ended.addEventListener("abort", done);
    wait.then(done, done);
  });
}

/** The callbacks waiting on each caller's signal, behind one listener of its own (see whenAborted). */
const abortCallbacks = new WeakMap(); // AbortSignal -> { waiting: Set of callbacks, onAbort }

/**
 * Calls `callback` when `signal` aborts; returns the function that forgets it. However many followers
 * wait on one signal (a server gives its shutdown signal to every follower), the signal has one
 * listener, while any waits: Node warns past ten on one target, and a listener each cost as much.
 */
function whenAborted(signal, callback) {
  let callbacks = abortCallbacks.get(signal);
  if (callbacks === undefined) {
    const waiting = new Set();
    const onAbort = () => {
      for (const waiter of [...waiting]) waiter();
    };
    callbacks = { waiting, onAbort };
    abortCallbacks.set(signal, callbacks);
    signal.addEventListener("abort", onAbort);
  }
  const entry = callbacks;
  entry.waiting.add(callback);
  return () => {
    entry.waiting.delete(callback);
    if (entry.waiting.size === 0 && abortCallbacks.get(signal) === entry) {
      abortCallbacks.delete(signal);
      signal.removeEventListener("abort", entry.onAbort);
    }
  };
}

const storeExporter = SessionStore.prototype.export;
Object.defineProperty(SessionStore.prototype, "export", {
  value: function (options) {
    // Validates options now; one session is read (and freed) per step.
    return exportSessions(storeExporter.call(this, options));
  },
  configurable: true,
  writable: true,
});

async function* exportSessions(exporter) {
  try {
    for (;;) {
      const next = await exporter.next();
      if (next === null) return;
      yield next;
    }
  } finally {
    exporter.free();
  }
}
