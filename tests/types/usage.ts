// Type-level contract of agent-session (API.md "Typing rules"). Compiled, never run:
//   node_modules/.bin/tsc -p tests/types/tsconfig.json
// Every `@ts-expect-error` line must fail to compile; if one starts compiling, tsc reports the
// unused directive and this check fails.
import {
  type CacheUsage,
  type MemoryUsage,
  SessionStore,
  Session,
  Invocation,
  AgentSessionError,
  ConcurrencyError,
  LeaseLostError,
  ConflictError,
  InvalidTransitionError,
  NotFoundError,
  SessionExpiredError,
  SessionClosedError,
  ValidationError,
  LimitExceededError,
  CorruptRecordError,
  StorageError,
  UnsafeStoreError,
  StopRequestedError,
  SchemaVersionError,
  MigrationError,
} from "agent-session";
import type {
  StoreOptions,
  OpenOptions,
  BeginOptions,
  SessionInfo,
  SessionView,
  SessionEvent,
  StoreEvent,
  Status,
  Json,
  JsonInput,
  ReadonlyJson,
  HostKv,
  HostKvCapabilities,
  IndexedDbStoreOptions,
  KvStoreOptions,
  ListResult,
  PendingInterrupt,
  StoreChange,
  SessionChange,
  ErrorCode,
  TransitionFrom,
  CryptoKeyLike,
  LiveEvent,
  StopResult,
  FollowOptions,
} from "agent-session";

/** Compile-time equality of two types. */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_proof?: T): void {}

declare const cryptoKey: CryptoKey;

async function stores(): Promise<void> {
  const options: StoreOptions = {
    owner: "tab-1",
    leaseMs: 30_000,
    heartbeat: true,
    idleTtlMs: 60_000,
    maxLifetimeMs: 86_400_000,
    snapshotEvery: 50,
    now: () => Date.now(),
    limits: { maxMessageBytes: 1 << 20, maxStateValueBytes: 1 << 20, maxCommitBytes: 4 << 20 },
    onEvent: (event) => {
      const type: StoreEvent["type"] = event.type;
      const session: string = event.session;
      switch (event.type) {
        case "lease.acquired": {
          const token: number = event.token;
          const owner: string = event.owner;
          const version: number = event.version;
          void token, owner, version;
          break;
        }
        case "abort":
        case "interrupt": {
          const durationMs: number = event.durationMs;
          void durationMs;
          break;
        }
        case "expire": {
          const version: number = event.version;
          void version;
          break;
        }
        case "snapshot": {
          const token: number = event.token;
          const owner: string = event.owner;
          void token, owner;
          break;
        }
        case "commit": {
          const version: number = event.version;
          const token: number = event.token;
          void version, token;
          break;
        }
        case "lease.denied": {
          const holder: string = event.owner;
          void holder;
          break;
        }
        case "corrupt": {
          const key: string = event.key;
          void key;
          break;
        }
      }
      void type, session;
    },
    encryptionKey: cryptoKey, // a DOM CryptoKey fits the structural CryptoKeyLike
  };
  const memory: SessionStore = await SessionStore.memory(options);
  await SessionStore.memory();
  const idbOptions: IndexedDbStoreOptions = { database: "agents", durability: "strict", owner: "tab" };
  await SessionStore.indexedDb(idbOptions);
  await SessionStore.indexedDb({ durability: "relaxed" });
  // @ts-expect-error durability is "relaxed" | "strict"
  await SessionStore.indexedDb({ durability: "eventual" });

  const kv: HostKv = {
    async get(key) {
      void key;
      return { value: new Uint8Array(1), version: "1" };
    },
    async put(key, value, putOptions) {
      void key, value;
      return putOptions?.expectedVersion === null ? "2" : null;
    },
    async delete(key, deleteOptions) {
      void key, deleteOptions?.expectedVersion;
      return true;
    },
    async list(prefix, listOptions) {
      void listOptions?.cursor, listOptions?.limit;
      return { keys: [prefix], cursor: undefined };
    },
    capabilities: { atomic: true, maxValueBytes: 131_072 },
  };
  const kvOptions: KvStoreOptions = { prefix: "app/", allowNonAtomic: false };
  await SessionStore.kv(kv, kvOptions);
  const capabilities: HostKvCapabilities | undefined = kv.capabilities;
  void capabilities;
  // @ts-expect-error a HostKv needs get/put/delete/list
  await SessionStore.kv({ get: async () => null });

  // @ts-expect-error no public constructor
  new SessionStore();
  // @ts-expect-error leaseMs is a number
  await SessionStore.memory({ leaseMs: "30s" });
  const cached: SessionStore = await SessionStore.memory({ cache: { maxSessions: 100, maxBytes: 1 << 20, ttlMs: 60_000 } });
  const usage: CacheUsage = cached.cacheUsage();
  const instance: MemoryUsage = SessionStore.memoryUsage();
  const counted: number = usage.bytes + usage.sessions + instance.wasmBytes + instance.countedBytes + instance.ceilingBytes;
  void counted;
  // @ts-expect-error cache.maxBytes is a number
  await SessionStore.memory({ cache: { maxBytes: "1 MiB" } });
  (await cached.open("d"))[Symbol.dispose]();

  const session: Session = await memory.open("id", { create: false, idleTtlMs: 1, maxLifetimeMs: 2, metadata: { a: [1] } });
  const random: Session = await memory.open();
  const openOptions: OpenOptions = { metadata: { when: new Date() } };
  await memory.open(undefined, openOptions);
  // @ts-expect-error ids are strings
  await memory.open(42);

  const page: ListResult = await memory.list({ prefix: "p/", limit: 10, cursor: "c" });
  // As API.md types it: the result's array is the caller's.
  const asApiTypesIt: { sessions: SessionInfo[]; cursor?: string } = await memory.list();
  asApiTypesIt.sessions.push(page.sessions[0]!);
  const info: SessionInfo = page.sessions[0]!;
  const expiresAt: number | null = info.expiresAt;
  const next: string | undefined = page.cursor;
  const deleted: boolean = await memory.delete("id");
  const swept: number = await memory.sweepExpired({ limit: 10 });
  const off: () => void = memory.onChange((change: StoreChange) => {
    const id: string = change.id;
    const status: Status = change.status;
    void id, status;
  });
  off();
  await memory.close();
  void random, expiresAt, next, deleted, swept;
}

async function sessions(session: Session): Promise<void> {
  const id: string = session.id;
  const version: number = session.version;
  const status: Status = session.status;
  const createdAt: number = session.createdAt;
  const updatedAt: number = session.updatedAt;
  const expiresAt: number | null = session.expiresAt;
  void id, version, status, createdAt, updatedAt, expiresAt;
  // @ts-expect-error the view is read-only
  session.version = 2;
  // @ts-expect-error status is one of the Status literals
  const wrongStatus: "idle" | "running" = session.status;
  void wrongStatus;

  const messages: readonly ReadonlyJson[] = session.messages();
  const planner = session.messages({ agent: "planner" });
  const state: Readonly<Record<string, ReadonlyJson>> = session.state();
  // @ts-expect-error reads are frozen: no push
  messages.push("x");
  // @ts-expect-error reads are frozen: no element assignment
  planner[0] = "x";
  // @ts-expect-error reads are frozen: no property assignment
  state.mood = "sad";
  const first = messages[0];
  if (first !== null && typeof first === "object" && !Array.isArray(first)) {
    const obj = first as { readonly [key: string]: ReadonlyJson };
    // @ts-expect-error nested objects of a read are read-only too
    obj.role = "admin";
  }
  // @ts-expect-error a read is not a mutable Json[]
  const mutable: Json[] = session.messages();
  void mutable;

  const pending: PendingInterrupt | null = session.pendingInterrupt();
  if (pending) {
    const reason: string = pending.reason;
    const payload: ReadonlyJson = pending.payload;
    void reason, payload;
  }
  const same: Session = await session.refresh();
  void same;

  const begin: BeginOptions = {
    agent: "planner",
    resume: { approved: true },
    onBusy: { waitMs: 5000 },
    traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  };
  const inv: Invocation = await session.begin(begin);
  await session.begin({ onBusy: "reject" });
  // @ts-expect-error onBusy is "reject" or { waitMs }
  await session.begin({ onBusy: "wait" });

  const n: number = await session.invoke(async (i) => {
    i.appendMessage("hi");
    return 1;
  });
  const s: string = await session.invoke((i) => i.id, { agent: "coder" });
  const nothing: void = await session.invoke((i) => {
    i.setState("k", 1);
  });
  void n, s, nothing, inv;

  const history: readonly SessionEvent[] = await session.history({ from: 0, to: 3 });
  for (const event of history) {
    const v: number = event.version;
    const at: number = event.at;
    const invocation: string = event.invocation;
    const trace: string | undefined = event.traceparent;
    const key: string | undefined = event.key; // accessible on the union without narrowing
    void v, at, invocation, trace, key;
    switch (event.type) {
      case "message": {
        const data: ReadonlyJson = event.data;
        const agent: string = event.agent;
        void data, agent;
        break;
      }
      case "state.set": {
        const k: string = event.key;
        const data: ReadonlyJson = event.data;
        void k, data;
        break;
      }
      case "state.delete": {
        const k: string = event.key;
        void k;
        break;
      }
      case "interrupt": {
        const reason: string = event.reason;
        const payload: ReadonlyJson = event.data;
        void reason, payload;
        break;
      }
      case "resume": {
        const answer: ReadonlyJson = event.data;
        void answer;
        break;
      }
      case "forked": {
        const from: string = event.data.from;
        const at: number = event.data.version;
        void from, at;
        break;
      }
      case "migrated": {
        const to: number = event.data.to;
        const migrated: readonly ReadonlyJson[] = event.data.messages;
        const whose: string = event.agent; // always there (API.md typing rules)
        void to, migrated, whose;
        break;
      }
      case "compacted": {
        const before: number = event.before;
        const summary: readonly ReadonlyJson[] = event.data;
        const agent: string = event.agent;
        void before, summary, agent;
        break;
      }
      case "stopped": {
        const by: string = event.data.by;
        const how: "stopped" | "fenced" = event.data.outcome;
        const why: string = event.reason;
        void by, how, why;
        break;
      }
      case "created": {
        // @ts-expect-error created events carry no key
        const k: string = event.key;
        // The session's metadata, when it has some (runtime: `data` of version 0), frozen like every read.
        const metadata: ReadonlyJson | undefined = event.data;
        assertType<Equals<typeof event.data, ReadonlyJson | undefined>>();
        if (event.data !== null && typeof event.data === "object" && !Array.isArray(event.data)) {
          // @ts-expect-error read-only, as the runtime freezes it
          event.data.user = "x";
        }
        void k, metadata;
        break;
      }
      case "closed": {
        // @ts-expect-error closed events carry no key
        const k: string = event.key;
        void k;
        break;
      }
      default: {
        const exhaustive: never = event;
        void exhaustive;
      }
    }
  }
  // @ts-expect-error "commit" is not a SessionEvent type
  const badType: SessionEvent["type"] = "commit";
  void badType;
  // @ts-expect-error history events are read-only
  history[0]!.version = 9;

  const view: SessionView = await session.at(2);
  const viewStatus: Status = view.status;
  const viewMessages: readonly ReadonlyJson[] = view.messages({ agent: "a" });
  const viewState: Readonly<Record<string, ReadonlyJson>> = view.state();
  void viewStatus, viewMessages, viewState;

  const fork: Session = await session.fork({ id: "copy", at: 1 });
  await session.fork();
  const unsubscribe: () => void = session.onChange((change: SessionChange) => {
    const v: number = change.version;
    const st: Status = change.status;
    void v, st;
  });
  unsubscribe();
  const closed: void = await session.close();
  void fork, closed;
}

class Custom {
  constructor(readonly x: number) {}
  toJSON(): JsonInput {
    return { x: this.x };
  }
}

type Message = { role: "user" | "assistant"; content: string; name?: string };

async function invocations(inv: Invocation): Promise<void> {
  const id: string = inv.id;
  const token: number = inv.token;
  const session: Session = inv.session;
  void id, token, session;

  inv.appendMessage({ role: "user", content: "hi" });
  inv.appendMessage("text");
  inv.appendMessage(42);
  inv.appendMessage(null);
  inv.appendMessage([1, "two", { three: [true] }]);
  inv.appendMessage({ optional: undefined, when: new Date(), custom: new Custom(1) });
  inv.appendMessage(new Date());
  const typed: Message = { role: "user", content: "typed" };
  inv.appendMessage(typed);
  const readonlyInput = { list: [1, 2] } as const;
  inv.appendMessage(readonlyInput);
  inv.appendMessage(inv.session.messages()[0]!); // a read can be written back
  inv.appendMessage({ nested: inv.session.state() });
  inv.appendMessage("to the planner", { agent: "planner" });

  // @ts-expect-error a function is not JSON
  inv.appendMessage(() => "hi");
  // @ts-expect-error a function property is not JSON
  inv.appendMessage({ run: () => 1 });
  // @ts-expect-error undefined is not a message
  inv.appendMessage(undefined);
  // @ts-expect-error a BigInt is not JSON
  inv.appendMessage({ n: 10n });
  // @ts-expect-error a symbol is not JSON
  inv.appendMessage(Symbol("s"));
  // @ts-expect-error a Map is not JSON
  inv.appendMessage(new Map([["a", 1]]));
  // @ts-expect-error an array may not hold undefined
  inv.appendMessage([1, undefined]);

  inv.setState("key", { value: [1, 2, 3] });
  inv.setState("key", "v", { agent: "coder" });
  // @ts-expect-error a function is not a state value
  inv.setState("key", function () {});
  // @ts-expect-error state keys are strings
  inv.setState(1, "v");
  inv.deleteState("key");
  inv.deleteState("key", { agent: "coder" });

  const messages: readonly ReadonlyJson[] = inv.messages();
  const state: Readonly<Record<string, ReadonlyJson>> = inv.state({ agent: "coder" });
  // @ts-expect-error read your writes is read-only too
  messages.push(1);
  void state;

  const renewed: void = await inv.renew();
  const checkpoint: number = await inv.checkpoint();
  const committed: number = await inv.commit();
  const aborted: void = await inv.abort();
  const interrupted: number = await inv.interrupt("approve?", { tool: "rm -rf" });
  await inv.interrupt("question");
  // @ts-expect-error the reason is a string
  await inv.interrupt({ reason: "x" });
  const disposed: Promise<void> = inv[Symbol.asyncDispose]();
  void renewed, checkpoint, committed, aborted, interrupted, disposed;

  // @ts-expect-error no public constructor
  new Invocation();
  // @ts-expect-error no public constructor
  new Session();
  // @ts-expect-error the token is read-only
  inv.token = 3;
}

function values(): void {
  const json: Json = { a: [1, null, "s", { b: true }] };
  const input: JsonInput = json;
  const ro: ReadonlyJson = json;
  const back: JsonInput = ro;
  // @ts-expect-error a ReadonlyJson is not a mutable Json
  const notMutable: Json = ro as ReadonlyJson & object;
  // @ts-expect-error undefined is not Json
  const undef: Json = undefined;
  void input, back, notMutable, undef;
}

function errors(error: unknown): void {
  if (error instanceof ConcurrencyError) {
    const code: "CONCURRENT_INVOCATION" = error.code;
    const holder: string = error.holder;
    const retry: number = error.retryAfterMs;
    // @ts-expect-error fields are read-only
    error.retryAfterMs = 0;
    void code, holder, retry;
  }
  if (error instanceof InvalidTransitionError) {
    const code: "INVALID_TRANSITION" | "SESSION_CLOSED" | "SESSION_EXPIRED" = error.code;
    const from: TransitionFrom = error.from;
    const fromStatus: Status | "committing" | "committed" | "aborted" | "lease-lost" = error.from;
    const action: string = error.action;
    void code, from, fromStatus, action;
  }
  if (error instanceof SessionClosedError) {
    const code: "SESSION_CLOSED" = error.code;
    const asParent: InvalidTransitionError = error;
    void code, asParent;
  }
  if (error instanceof SessionExpiredError) {
    const code: "SESSION_EXPIRED" = error.code;
    void code;
  }
  if (error instanceof ValidationError) {
    const path: string | undefined = error.path;
    const code: "INVALID_INPUT" = error.code;
    const cause: unknown = error.cause;
    void path, code, cause;
  }
  if (error instanceof LimitExceededError) {
    const limit: number = error.limit;
    const actual: number = error.actual;
    void limit, actual;
  }
  if (error instanceof CorruptRecordError) {
    const key: string = error.key;
    void key;
  }
  if (error instanceof StorageError) {
    const cause: unknown = error.cause;
    void cause;
  }
  if (error instanceof AgentSessionError) {
    const code: string = error.code;
    const message: string = error.message;
    const asError: Error = error;
    void code, message, asError;
  }
  const codes: ErrorCode[] = [
    new LeaseLostError().code,
    new ConflictError().code,
    new NotFoundError().code,
    new UnsafeStoreError().code,
  ];
  void codes;
  // @ts-expect-error a wrong code literal
  const wrong: ConcurrencyError["code"] = "LEASE_LOST";
  // @ts-expect-error codes are exact literals
  const wrong2: NotFoundError["code"] = "NOT_FOUND_ERROR";
  // @ts-expect-error SessionClosedError's code is SESSION_CLOSED only
  const wrong3: SessionClosedError["code"] = "INVALID_TRANSITION";
  void wrong, wrong2, wrong3;

  assertType<Equals<LeaseLostError["code"], "LEASE_LOST">>();
  assertType<Equals<ConflictError["code"], "VERSION_CONFLICT">>();
  assertType<Equals<NotFoundError["code"], "NOT_FOUND">>();
  assertType<Equals<CorruptRecordError["code"], "CORRUPT_RECORD">>();
  assertType<Equals<StorageError["code"], "STORAGE">>();
  assertType<Equals<UnsafeStoreError["code"], "UNSAFE_STORE">>();
  assertType<Equals<LimitExceededError["code"], "LIMIT_EXCEEDED">>();
  assertType<Equals<ValidationError["code"], "INVALID_INPUT">>();
  assertType<Equals<SessionEvent["type"], "created" | "message" | "state.set" | "state.delete" | "interrupt" | "resume" | "closed" | "forked" | "stopped" | "compacted" | "migrated">>();
  assertType<
    Equals<
      StoreEvent["type"],
      | "lease.acquired"
      | "lease.denied"
      | "lease.renewed"
      | "lease.lost"
      | "lease.released"
      | "commit"
      | "abort"
      | "interrupt"
      | "expire"
      | "conflict"
      | "snapshot"
      | "corrupt"
    >
  >();
  assertType<Equals<Status, "idle" | "running" | "interrupted" | "closed" | "expired">>();
  assertType<Equals<Awaited<ReturnType<Session["history"]>>, readonly SessionEvent[]>>();
  assertType<Equals<ReturnType<Session["messages"]>, readonly ReadonlyJson[]>>();
  assertType<Equals<ReturnType<Session["state"]>, Readonly<Record<string, ReadonlyJson>>>>();
}

const keyLike: CryptoKeyLike = { type: "secret", extractable: false, algorithm: { name: "AES-GCM" }, usages: ["encrypt"] };
void keyLike, stores, sessions, invocations, values, errors;

async function liveTurns(session: Session, inv: Invocation): Promise<void> {
  const seq: number = inv.emit({ delta: "hi" });
  await inv.flush();
  const signal: AbortSignal = inv.signal;
  if (signal.aborted && signal.reason instanceof StopRequestedError) {
    const by: string = signal.reason.by;
    const code: "STOP_REQUESTED" = signal.reason.code;
    void by, code;
  }
  // @ts-expect-error a part is JSON
  inv.emit(() => 1);
  const options: FollowOptions = { after: { invocation: "i", seq } };
  for await (const event of session.follow(options)) {
    const e: LiveEvent = event;
    if (e.type === "part") {
      const data: ReadonlyJson = e.data;
      void data;
    } else if (e.type === "end") {
      const outcome: "committed" | "interrupted" | "aborted" | "stopped" | "lost" = e.outcome;
      void outcome;
    }
    break;
  }
  inv.compact({ before: 10, summary: [{ role: "system", content: "summary" }] });
  inv.compact({ before: 2, summary: [], agent: "planner", force: true });
  // @ts-expect-error before is required
  inv.compact({ summary: [] });
  const result: StopResult = await session.stop({ reason: "user", graceMs: 0 });
  const outcome: "idle" | "stopped" | "fenced" = result.outcome;
  void outcome;
}
void liveTurns;

async function migrations(): Promise<void> {
  const store = await SessionStore.memory({
    schema: {
      version: 2,
      migrate: {
        1: ({ messages, state }) => ({ messages: [...messages], state: { ...state } }),
        2: (data) => ({ messages: data.messages.map((m) => ({ wrapped: m })), state: {} }),
      },
    },
  });
  try {
    await store.open("x");
  } catch (error) {
    if (error instanceof SchemaVersionError) {
      const stored: number = error.stored;
      void stored;
    } else if (error instanceof MigrationError) {
      const from: number = error.from;
      const cause: unknown = error.cause;
      void from, cause;
    }
  }
}
void migrations;

// Writes take values typed by an interface (no index signature, so not a JsonInput) and class
// instances whose fields are JSON, as the runtime does; a method, a Map, a Set, a function, a symbol,
// a bigint, `undefined` itself or `unknown` anywhere in them is refused (JsonInputOf).
async function interfaceValues(inv: Invocation) {
  interface Part {
    kind: string;
    data: { n: number }[];
  }
  interface ChatMessage {
    role: "user" | "assistant";
    content: string;
    name?: string;
    parts?: readonly Part[];
  }
  class Fields {
    a = 1;
    b = "x";
  }
  class WithMethod {
    a = 1;
    m() {
      return 1;
    }
  }
  const message: ChatMessage = { role: "user", content: "hi" };
  inv.appendMessage(message);
  inv.appendMessage([message, message]);
  inv.appendMessage(new Fields());
  inv.appendMessage(new Date());
  inv.setState("last", message);
  inv.emit(message);
  await inv.interrupt("approve?", message);
  const json: JsonInput = message as unknown as JsonInput;
  inv.appendMessage(json);
  const read: ReadonlyJson = "read back";
  inv.appendMessage(read);
  const unknownValue: unknown = message;
  // @ts-expect-error a Map
  inv.appendMessage(new Map<string, number>());
  // @ts-expect-error a Set inside an object
  inv.setState("tags", { tags: new Set<string>() });
  // @ts-expect-error a function
  inv.emit(() => 1);
  // @ts-expect-error a class instance with a method
  inv.appendMessage(new WithMethod());
  // @ts-expect-error an interface with a method field
  inv.appendMessage(message as ChatMessage & { f: () => number });
  // @ts-expect-error a bigint
  inv.appendMessage(1n);
  // @ts-expect-error a symbol inside
  inv.appendMessage({ s: Symbol("x") });
  // @ts-expect-error undefined itself
  inv.appendMessage(undefined);
  // @ts-expect-error unknown (a parsed request body): "not assignable to parameter of type JsonInput"
  inv.appendMessage(unknownValue);
}
void interfaceValues;
