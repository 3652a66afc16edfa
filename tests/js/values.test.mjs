// Values follow JSON; ids; frozen reads; size limits; list/delete/open.
import { describe as suite } from "node:test";
import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { SessionStore, ValidationError, LimitExceededError, NotFoundError, AgentSessionError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import {
  rejection,
  thrown,
  assertError,
  plain,
  clockStore,
  callAsync,
  assertDeepFrozen,
  utf8Bytes,
  test,
} from "./_helpers.mjs";

async function openInvocation(options) {
  const { store } = await clockStore(options);
  const session = await store.open();
  const inv = await session.begin();
  return { store, session, inv };
}

suite("values: JSON semantics", () => {
  test("toJSON is honoured (a Date is stored as its ISO string) and undefined properties are dropped", async () => {
    const { session, inv } = await openInvocation();
    const when = new Date(Date.UTC(2024, 1, 29, 12, 30, 0, 5));
    inv.appendMessage({ when, nested: { toJSON: () => ({ replaced: true }) }, gone: undefined, kept: 1 });
    inv.appendMessage(when);
    inv.setState("custom", { toJSON: (key) => `key=${key}` });
    inv.setState("sparse", { a: undefined, b: [1, { c: undefined }] });
    // Read your writes already shows the JSON form.
    assert.deepEqual(plain(inv.messages()[1]), "2024-02-29T12:30:00.005Z");
    await inv.commit();
    const [first, second] = session.messages();
    assert.equal(first.when, "2024-02-29T12:30:00.005Z");
    assert.deepEqual(first.nested, { replaced: true });
    assert.equal(Object.hasOwn(first, "gone"), false, "an undefined property is left out");
    assert.deepEqual(Object.keys(first).sort(), ["kept", "nested", "when"]);
    assert.equal(second, "2024-02-29T12:30:00.005Z");
    assert.equal(typeof session.state().custom, "string");
    assert.match(session.state().custom, /^key=/);
    assert.deepEqual(session.state().sparse, { b: [1, {}] });
    assert.equal(Object.hasOwn(session.state().sparse, "a"), false);
  });

  test("an object whose toJSON gives plain data (a framework's event class) is stored as that data, its toJSON called once a write; a toJSON giving what is not plain goes the checked way", async () => {
    const { session, inv } = await openInvocation();
    let calls = 0;
    class StreamEvent {
      type = "modelStreamUpdateEvent";
      agent = { messages: ["not", "stored"] };
      constructor(text) {
        this.event = { type: "delta", text };
      }
      toJSON(key) {
        calls++;
        return { type: this.type, event: this.event, key };
      }
    }
    inv.appendMessage(new StreamEvent("a"));
    inv.setState("event", new StreamEvent("b"));
    inv.emit(new StreamEvent("c"));
    assert.equal(calls, 3, "toJSON once a write");
    // toJSON's result holding a class instance, or a Map: as JSON.stringify writes it, or refused.
    inv.setState("nested", { toJSON: () => ({ at: new Date(Date.UTC(2021, 0, 1)), point: new (class { x = 1; })() }) });
    const error = thrown(() => inv.setState("map", { toJSON: () => ({ m: new Map([["a", 1]]) }) }));
    assertError(error, ValidationError, "INVALID_INPUT", "a Map in what toJSON gives");
    await inv.commit();
    assert.deepEqual(plain(session.messages()[0]), { type: "modelStreamUpdateEvent", event: { type: "delta", text: "a" }, key: "" });
    assert.deepEqual(plain(session.state().event), { type: "modelStreamUpdateEvent", event: { type: "delta", text: "b" }, key: "" });
    assert.deepEqual(plain(session.state().nested), { at: "2021-01-01T00:00:00.000Z", point: { x: 1 } });
    assert.equal(Object.hasOwn(session.state(), "map"), false);
  });

  test("values JSON carries are stored as JSON.stringify writes them: boxed primitives, typed arrays, a toJSON that is not a function, undefined properties, a toJSON deep inside", async () => {
    const { session, inv } = await openInvocation();
    const values = [
      new Number(5),
      new String("ab"),
      new Boolean(false),
      { n: new Number(-0.5), s: [new String("x")] },
      new Uint8Array([1, 2, 250]),
      new (class Point { x = 1; y = 2; })(),
      new (class Keyed extends Map { toJSON() { return Object.fromEntries(this); } })([["a", 1]]),
      { toJSON: 5, keep: "yes" },
      { a: undefined, b: [null, { c: undefined, d: "" }] },
      { deep: [{ when: new Date(Date.UTC(2020, 0, 1)) }] },
      Object.create(null, { visible: { value: 1, enumerable: true }, hidden: { value: 2, enumerable: false } }),
      [[[]], {}, "", 0, -0, 1e300, true],
    ];
    values.forEach((value, i) => inv.setState(`v${i}`, value));
    await inv.commit();
    values.forEach((value, i) => assert.deepEqual(plain(session.state()[`v${i}`]), JSON.parse(JSON.stringify(value)), `value ${i}`));
  });

  test("built-in objects whose data JSON.stringify drops (writing {}) are refused, naming the path; nothing is staged", async () => {
    const { store, session, inv } = await openInvocation();
    inv.setState("kept", 1);
    const dropped = [
      [new Map([["a", 1]]), "is a Map"],
      [new Map(), "is a Map"],
      [new Set([1, 2]), "is a Set"],
      [new ArrayBuffer(4), "is binary data"],
      [new DataView(new ArrayBuffer(2)), "is binary data"],
      [new WeakMap(), "is a WeakMap"],
      [new WeakSet(), "is a WeakSet"],
      [Promise.resolve(1), "is a Promise"],
      [/a+b/g, "is a RegExp"],
      [new TypeError("boom"), "is an Error"],
    ];
    for (const [value, what] of dropped) {
      for (const [call, path] of [
        [() => inv.setState("k", { deep: [value] }), 'state["k"].deep[0]'],
        [() => inv.appendMessage({ content: value }), "message.content"],
        [() => inv.emit(value), "part"],
      ]) {
        const error = thrown(call);
        assertError(error, ValidationError, "INVALID_INPUT", `${what} at ${path}`);
        assert.equal(error.path, path);
        assert.ok(error.message.includes(what), error.message);
      }
      const opened = await rejection(store.open(undefined, { create: true, metadata: { value } }));
      assertError(opened, ValidationError, "INVALID_INPUT", `${what} in metadata`);
    }
    await inv.commit();
    assert.deepEqual(plain(session.state()), { kept: 1 });
    assert.deepEqual(session.messages(), []);
  });

  test("a boxed NaN or Infinity and a boxed BigInt are refused like the values they box (JSON.stringify writes null and throws)", async () => {
    const { session, inv } = await openInvocation();
    for (const [value, path] of [
      [new Number(NaN), "value"],
      [{ a: [new Number(Infinity)] }, "value.a[0]"],
      [Object(10n), "value"],
      [{ deep: { n: Object(1n) } }, "value.deep.n"],
    ]) {
      const error = thrown(() => inv.setState("k", value));
      assertError(error, ValidationError, "INVALID_INPUT", `setState of ${path}`);
      assert.ok(error.path.startsWith("value") || error.path.includes(path.slice(5)), `${error.path} for ${path}`);
      assert.ok(thrown(() => inv.appendMessage(value)) instanceof ValidationError);
    }
    inv.setState("fine", new Number(2));
    await inv.commit();
    assert.deepEqual(plain(session.state()), { fine: 2 });
  });

  test("objects of another realm (a vm context, as an iframe's) are refused or stored as this realm's are", async () => {
    const { store, session, inv } = await openInvocation();
    const foreign = (source) => runInNewContext(source);
    const dropped = [
      ["new Map([['a', 1]])", "is a Map"],
      ["new Set([1, 2])", "is a Set"],
      ["new ArrayBuffer(4)", "is binary data"],
      ["new DataView(new ArrayBuffer(2))", "is binary data"],
      ["new WeakMap()", "is a WeakMap"],
      ["new WeakSet()", "is a WeakSet"],
      ["new WeakRef({})", "is a WeakRef"],
      ["Promise.resolve(1)", "is a Promise"],
      ["/a+b/g", "is a RegExp"],
      ["new TypeError('boom')", "is an Error"],
      ["new Number(NaN)", "is a Number object of NaN"],
      ["Object(1n)", "is a BigInt object"],
    ];
    for (const [source, what] of dropped) {
      for (const [call, path] of [
        [() => inv.setState("k", { deep: [foreign(source)] }), 'state["k"].deep[0]'],
        [() => inv.appendMessage({ content: foreign(source) }), "message.content"],
        [() => inv.emit(foreign(source)), "part"],
      ]) {
        const error = thrown(call);
        assertError(error, ValidationError, "INVALID_INPUT", `${source} at ${path}`);
        assert.equal(error.path, path, source);
        assert.ok(error.message.includes(what), `${source}: ${error.message}`);
      }
      const opened = await rejection(store.open(undefined, { create: true, metadata: { value: foreign(source) } }));
      assertError(opened, ValidationError, "INVALID_INPUT", `${source} in metadata`);
    }
    const kept = {
      boxed: foreign("[new Number(2), new String('s'), new Boolean(true)]"),
      plain: foreign("({ a: [1, { b: null }], c: 'x', d: undefined })"),
      // Only its built-in tag says "Map": an object that merely names itself one keeps its properties.
      named: foreign("({ [Symbol.toStringTag]: 'Map', size: 1 })"),
      bytes: foreign("new Uint8Array([1, 250])"),
      when: foreign("new Date(Date.UTC(2020, 0, 1))"),
    };
    // With a value JSON cannot carry beside them, the boxed values go through the checked walk.
    assert.ok(thrown(() => inv.setState("mixed", [foreign("new Number(1)"), () => 1])) instanceof ValidationError);
    for (const [key, value] of Object.entries(kept)) inv.setState(key, value);
    await inv.commit();
    assert.deepEqual(plain(session.state()), {
      boxed: [2, "s", true],
      plain: { a: [1, { b: null }], c: "x" },
      named: { size: 1 },
      bytes: { 0: 1, 1: 250 },
      when: "2020-01-01T00:00:00.000Z",
    });
  });

  test("class instances are stored as their own enumerable properties, on the fast path as on the checked one", async () => {
    const { session, inv } = await openInvocation();
    class Event {
      type = "delta";
      skipped = undefined;
      get computed() {
        return "not written: a getter of the prototype";
      }
    }
    class List extends Array {}
    class Entries extends Map {}
    const event = new Event();
    inv.setState("event", event);
    inv.setState("list", List.from([1, new Event()]));
    // The same instances beside a value that sends the whole write through the replacer's path.
    inv.setState("both", { event, list: List.from([2]), date: new Date(0) });
    const error = thrown(() => inv.setState("entries", { inner: new Entries([["a", 1]]) }));
    assertError(error, ValidationError, "INVALID_INPUT", "a Map subclass");
    assert.equal(error.path, 'state["entries"].inner');
    await inv.commit();
    assert.deepEqual(plain(session.state()), {
      event: { type: "delta" },
      list: [1, { type: "delta" }],
      both: { event: { type: "delta" }, list: [2], date: "1970-01-01T00:00:00.000Z" },
    });
  });

  test("a value shared by siblings is not a cycle; a toJSON that returns undefined is refused, a state key named in the path", async () => {
    const { session, inv } = await openInvocation();
    const shared = { n: 1 };
    inv.setState("dag", { a: shared, b: [shared, shared], c: { d: shared } });
    const error = thrown(() => inv.setState("odd key", { inner: { toJSON: () => undefined } }));
    assertError(error, ValidationError, "INVALID_INPUT");
    assert.equal(error.path, 'state["odd key"].inner');
    const listed = thrown(() => inv.appendMessage({ list: [{ toJSON: () => undefined }] }));
    assert.equal(listed.path, "message.list[0]");
    await inv.commit();
    assert.deepEqual(plain(session.state()), { dag: { a: { n: 1 }, b: [{ n: 1 }, { n: 1 }], c: { d: { n: 1 } } } });
  });

  test("strings round-trip exactly, lone surrogates included", async () => {
    const { store, session, inv } = await openInvocation();
    const strings = ["\uD800", "\uDC00", "a\uDBFFb", "\uDFFF\uD800", "😀", "\u0000\u001f\"\\", "\u2028\u2029", "é"];
    for (const s of strings) inv.appendMessage(s);
    inv.appendMessage({ key: strings.join("|"), [strings[2]]: "lone key" });
    inv.setState("lone", strings[0]);
    await inv.interrupt("reason", { payload: "\uDE00" });
    const check = (messages) => {
      assert.equal(messages.length, strings.length + 1);
      strings.forEach((s, i) => {
        assert.equal(messages[i], s, `message ${i}`);
        assert.equal(messages[i].length, s.length, `message ${i} length`);
      });
      assert.equal(messages.at(-1).key, strings.join("|"));
      assert.equal(messages.at(-1)[strings[2]], "lone key", "a lone surrogate in a property name round-trips");
    };
    check(session.messages());
    const reopened = await store.open(session.id);
    check(reopened.messages());
    assert.equal(reopened.state().lone, "\uD800");
    assert.deepEqual(plain(reopened.pendingInterrupt()), { reason: "reason", payload: { payload: "\uDE00" } });
    const history = await reopened.history();
    assert.equal(history[1].data, "\uD800");
    assert.equal((await reopened.at(1)).messages()[2], "a\uDBFFb");
  });

  test("long strings round-trip exactly, whichever way they cross into wasm", async () => {
    // Strings from 64 characters on (1024 outside Node) are copied into wasm by TextEncoder.encodeInto,
    // shorter ones by wasm-bindgen's loop (scripts/patch-glue.mjs): both sides of each threshold, with
    // non-ASCII and lone surrogates at the start, the middle and the end.
    const { store, session, inv } = await openInvocation();
    const strings = [];
    for (const length of [63, 64, 65, 1023, 1024, 1025, 5000]) {
      const ascii = "a".repeat(length);
      strings.push(ascii, "é" + ascii.slice(1), ascii.slice(1) + "😀", ascii.slice(0, length >> 1) + "\uD800" + ascii.slice(length >> 1));
      strings.push("\"" + ascii.slice(2) + "\n");
    }
    strings.forEach((text, i) => {
      inv.appendMessage(text);
      inv.setState(`s${i}`, { text });
    });
    await inv.commit();
    for (const read of [session, await store.open(session.id)]) {
      const messages = read.messages();
      const state = read.state();
      strings.forEach((text, i) => {
        assert.equal(messages[i], text, `message ${i} (${text.length} characters)`);
        assert.equal(state[`s${i}`].text, text, `state value ${i}`);
      });
    }
  });

  test("numbers: -0, large and small doubles keep their JSON value", async () => {
    const { session, inv } = await openInvocation();
    const numbers = [0, 1.5, -2, 1e300, 5e-324, Number.MAX_SAFE_INTEGER, 0.1 + 0.2];
    inv.appendMessage(numbers);
    inv.appendMessage(-0);
    await inv.commit();
    assert.deepEqual(session.messages()[0], numbers);
    assert.equal(session.messages()[1], 0, "-0 is stored as JSON 0");
  });

  const bad = [
    ["a function", () => () => 1, null],
    ["a function property", () => ({ tools: [{ run() {} }] }), /tools.*0.*run/],
    ["a symbol", () => Symbol("s"), null],
    ["a symbol property", () => ({ a: { b: Symbol("s") } }), /a.*b/],
    ["a BigInt", () => ({ count: 10n }), /count/],
    ["NaN", () => ({ x: [1, NaN] }), /x.*1/],
    ["Infinity", () => ({ deep: { inf: Infinity } }), /deep.*inf/],
    ["-Infinity", () => -Infinity, null],
    ["undefined as the value", () => undefined, null],
    ["undefined as an array element", () => ({ list: [1, undefined, 3] }), /list.*1/],
    [
      "a cycle",
      () => {
        const o = { a: { b: {} } };
        o.a.b.c = o;
        return o;
      },
      /a.*b.*c/,
    ],
    [
      "an array cycle",
      () => {
        const a = [1];
        a.push([a]);
        return a;
      },
      null,
    ],
    [
      "nesting deeper than 512",
      () => {
        let v = 0;
        for (let i = 0; i < 513; i++) v = [v];
        return v;
      },
      null,
    ],
    [
      "nesting deeper than 512 (objects)",
      () => {
        let v = 0;
        for (let i = 0; i < 600; i++) v = { v };
        return v;
      },
      null,
    ],
  ];

  for (const [what, make, pathPattern] of bad) {
    test(`ValidationError naming the path: ${what}`, async () => {
      const { session, inv } = await openInvocation();
      inv.appendMessage("good");
      const error = thrown(() => inv.appendMessage(make()), `appendMessage(${what})`);
      assertError(error, ValidationError, "INVALID_INPUT", what);
      assert.ok(error instanceof AgentSessionError);
      if (pathPattern) {
        assert.equal(typeof error.path, "string", `${what}: path must be set`);
        assert.match(error.path, pathPattern, `${what}: path ${JSON.stringify(error.path)}`);
      }
      // setState rejects the same value.
      const error2 = thrown(() => inv.setState("k", make()), `setState(${what})`);
      assert.ok(error2 instanceof ValidationError);
      // Nothing was staged by the refused calls.
      assert.deepEqual(plain(inv.messages()), ["good"]);
      assert.deepEqual(plain(inv.state()), {});
      await inv.commit();
      assert.deepEqual(plain(session.messages()), ["good"]);
      assert.deepEqual(plain(session.state()), {});
      assert.equal((await session.history()).length, 2);
    });
  }

  test("nesting of exactly 512 levels is accepted", async () => {
    const { session, inv } = await openInvocation();
    let v = 0;
    for (let i = 0; i < 512; i++) v = [v];
    inv.appendMessage(v);
    await inv.commit();
    let depth = 0;
    for (let x = session.messages()[0]; Array.isArray(x); x = x[0]) depth++;
    assert.equal(depth, 512);
  });

  test("a throwing toJSON, getter or proxy trap is a ValidationError with the thrown error as cause", async () => {
    const { inv } = await openInvocation();
    const cause1 = new Error("toJSON failed");
    const e1 = thrown(() => inv.appendMessage({ x: { toJSON: () => { throw cause1; } } }));
    assertError(e1, ValidationError, "INVALID_INPUT");
    assert.equal(e1.cause, cause1);
    assert.match(e1.path ?? "", /x/);

    const cause2 = new RangeError("getter failed");
    const withGetter = {
      get secret() {
        throw cause2;
      },
    };
    const e2 = thrown(() => inv.setState("k", { wrap: withGetter }));
    assertError(e2, ValidationError, "INVALID_INPUT");
    assert.equal(e2.cause, cause2);
    assert.match(e2.path ?? "", /wrap.*secret/);

    const cause3 = new Error("ownKeys trap failed");
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw cause3;
        },
      },
    );
    const e3 = thrown(() => inv.appendMessage({ p: proxy }));
    assertError(e3, ValidationError, "INVALID_INPUT");
    assert.equal(e3.cause, cause3);
    assert.deepEqual(plain(inv.messages()), []);
    await inv.abort();
  });

  test("interrupt payloads and metadata are validated too (rejections, not throws)", async () => {
    const { store, session, inv } = await openInvocation();
    const error = await rejection(callAsync(() => inv.interrupt("q", { f() {} })));
    assertError(error, ValidationError, "INVALID_INPUT");
    assert.equal(session.status, "running");
    assert.equal(session.version, 0);
    await inv.abort();
    const e2 = await rejection(callAsync(() => store.open("with-bad-metadata", { metadata: { n: 1n } })));
    assertError(e2, ValidationError, "INVALID_INPUT");
    await assert.rejects(store.open("with-bad-metadata", { create: false }), NotFoundError);
    const e3 = await rejection(callAsync(() => session.begin({ resume: NaN })));
    assert.ok(e3 instanceof ValidationError || e3.code === "INVALID_TRANSITION", String(e3));
  });

  test("state keys are 1..256 UTF-8 bytes like ids", async () => {
    const { session, inv } = await openInvocation();
    for (const key of ["", "é".repeat(128) + "x", "\uD800"]) {
      const error = thrown(() => inv.setState(key, 1), `setState(${JSON.stringify(key).slice(0, 12)})`);
      assertError(error, ValidationError, "INVALID_INPUT");
      assert.ok(!(error instanceof LimitExceededError));
      const e2 = thrown(() => inv.deleteState(key));
      assert.ok(e2 instanceof ValidationError);
    }
    inv.setState("é".repeat(128), "max");
    inv.setState("a/b\u0000..%", "odd");
    await inv.commit();
    assert.deepEqual(plain(session.state()), { ["é".repeat(128)]: "max", "a/b\u0000..%": "odd" });
  });
});

suite("ids", () => {
  test("a huge id, key, reason, traceparent, or a value over its limit (metadata and interrupt payloads too) is refused before it is copied into wasm memory (which never shrinks)", async () => {
    const { store, inv } = await openInvocation();
    const huge = "é".repeat(64 << 20); // 64 Mi UTF-16 units, 128 MiB of UTF-8
    const before = SessionStore.memoryUsage().wasmBytes;
    const opened = await rejection(store.open(huge));
    assertError(opened, ValidationError, "INVALID_INPUT");
    assert.match(opened.message, /1 to 256 UTF-8 bytes/);
    assertError(thrown(() => inv.setState(huge, 1)), ValidationError, "INVALID_INPUT");
    assertError(thrown(() => inv.stateValue(huge)), ValidationError, "INVALID_INPUT");
    assertError(await rejection(inv.interrupt(huge)), ValidationError, "INVALID_INPUT");
    const other = await store.open("other");
    assertError(await rejection(other.begin({ traceparent: huge })), ValidationError, "INVALID_INPUT");
    // A value over its size limit: LimitExceededError with the exact size, and never copied in.
    const big = "x".repeat(64 << 20);
    for (const [what, call] of [
      ["appendMessage", () => inv.appendMessage(big)],
      ["setState", () => inv.setState("k", big)],
      ["emit", () => inv.emit(big)],
      ["compact", () => inv.compact({ before: 0, summary: [big] })],
    ]) {
      const error = thrown(call, what);
      assertError(error, LimitExceededError, "LIMIT_EXCEEDED", what);
      assert.equal(error.actual, (64 << 20) + 2, `${what}: actual`);
    }
    for (const [what, call] of [
      ["open with metadata", () => store.open("with-metadata", { metadata: big })],
      ["begin with a resume answer", () => other.begin({ resume: big })],
      ["interrupt payload", () => inv.interrupt("why", big)],
    ]) {
      const error = await rejection(call(), what);
      assertError(error, LimitExceededError, "LIMIT_EXCEEDED", what);
      assert.equal(error.actual, (64 << 20) + 2, `${what}: actual`);
    }
    const accented = thrown(() => inv.appendMessage("é".repeat(2 << 20)));
    assert.equal(accented.actual, (4 << 20) + 2, "the UTF-8 size of a text of 2-byte characters");
    const grown = SessionStore.memoryUsage().wasmBytes - before;
    assert.ok(grown < 16 << 20, `wasm memory grew by ${grown} bytes`);
  });

  test("bad ids are ValidationError (never LimitExceededError)", async () => {
    const store = await SessionStore.memory();
    const cases = [
      ["empty", ""],
      ["257 bytes", "é".repeat(128) + "x"],
      ["257 ASCII bytes", "a".repeat(257)],
      ["a number", 42],
      ["an object", { id: "x" }],
      ["a lone surrogate", "abc\uD800"],
      ["a lone low surrogate", "\uDC00"],
    ];
    for (const [what, id] of cases) {
      for (const [method, call] of [
        ["open", () => store.open(id)],
        ["open create:false", () => store.open(id, { create: false })],
        ["delete", () => store.delete(id)],
      ]) {
        const error = await rejection(callAsync(call, `${method}(${what})`), `${method}(${what})`);
        assertError(error, ValidationError, "INVALID_INPUT", `${method}(${what})`);
        assert.ok(!(error instanceof LimitExceededError));
      }
    }
    assert.equal(utf8Bytes("é".repeat(128)), 256);
    const max = await store.open("é".repeat(128));
    assert.equal(max.id, "é".repeat(128));
    const source = await store.open("fork-src");
    await assert.rejects(source.fork({ id: "\uD800" }), ValidationError);
    await assert.rejects(source.fork({ id: "a".repeat(257) }), ValidationError);
    assert.deepEqual(
      (await store.list()).sessions.map((s) => s.id).sort(),
      ["fork-src", "é".repeat(128)].sort(),
      "refused ids created nothing",
    );
  });

  test("ids with /, NUL, .., % and escapes are distinct sessions", async () => {
    const store = await SessionStore.memory();
    const ids = ["a", "a/", "a/b", "a%2Fb", "a%2fb", "a\u0000b", "a\u0000", "..", "../a", ".", "%", "%25", "a b", "A", "😀", "a/b/c", "h/a", "e/a"];
    for (const id of ids) {
      const session = await store.open(id);
      assert.equal(session.id, id);
      await session.invoke((inv) => inv.appendMessage(`I am ${JSON.stringify(id)}`));
    }
    for (const id of ids) {
      const session = await store.open(id, { create: false });
      assert.equal(session.version, 1, `version of ${JSON.stringify(id)}`);
      assert.deepEqual(plain(session.messages()), [`I am ${JSON.stringify(id)}`], `messages of ${JSON.stringify(id)}`);
    }
    const listed = [];
    let cursor;
    do {
      const page = await store.list({ cursor });
      listed.push(...page.sessions.map((s) => s.id));
      cursor = page.cursor;
    } while (cursor !== undefined);
    assert.deepEqual([...listed].sort(), [...ids].sort());
    const prefixed = (await store.list({ prefix: "a/" })).sessions.map((s) => s.id).sort();
    assert.deepEqual(prefixed, ["a/", "a/b", "a/b/c"].sort());
    const nul = (await store.list({ prefix: "a\u0000" })).sessions.map((s) => s.id).sort();
    assert.deepEqual(nul, ["a\u0000", "a\u0000b"].sort());
    assert.equal(await store.delete("a"), true);
    assert.equal((await store.open("a/b", { create: false })).version, 1, "deleting a leaves a/b alone");
    assert.equal((await store.open("a/", { create: false })).version, 1);
  });

  test("random ids: at least 22 characters of [A-Za-z0-9_-], distinct", async () => {
    const store = await SessionStore.memory();
    const seen = new Set();
    for (let i = 0; i < 50; i++) {
      const session = await callAsync(() => store.open());
      assert.match(session.id, /^[A-Za-z0-9_-]{22,}$/);
      assert.equal(session.version, 0);
      seen.add(session.id);
    }
    assert.equal(seen.size, 50);
    const withOptions = await store.open(undefined, { metadata: { from: "test" } });
    assert.match(withOptions.id, /^[A-Za-z0-9_-]{22,}$/);
    assert.ok(!seen.has(withOptions.id));
  });
});

suite("reads are frozen", () => {
  test("messages(), state(), history(), pendingInterrupt() and views are deeply frozen", async () => {
    const { store } = await clockStore();
    const session = await store.open("frozen");
    await session.invoke((inv) => {
      inv.appendMessage({ role: "user", parts: [{ text: "hi" }] });
      inv.setState("config", { tools: ["a", "b"], nested: { x: 1 } });
    });
    await (await session.begin()).interrupt("q", { options: [{ id: 1 }] });
    const messages = session.messages();
    assertDeepFrozen(messages);
    assertDeepFrozen(session.state());
    assertDeepFrozen(session.messages({ agent: "nobody" }));
    assertDeepFrozen(await session.history());
    assertDeepFrozen(session.pendingInterrupt());
    const view = await session.at(1);
    assertDeepFrozen(view.messages());
    assertDeepFrozen(view.state());
    assert.throws(() => messages.push("x"), TypeError);
    assert.throws(() => {
      messages[0].role = "admin";
    }, TypeError);
    assert.throws(() => {
      session.state().config.tools.push("c");
    }, TypeError);
    assert.deepEqual(plain(session.messages()), [{ role: "user", parts: [{ text: "hi" }] }]);
    // Frozen values can be written back (cloned by the write, not by the caller).
    await session.invoke((inv) => inv.appendMessage(messages[0]), { resume: "ok" });
    assert.equal(session.messages().length, 2);
  });

  test("an invocation's reads are frozen too", async () => {
    const { inv } = await openInvocation();
    inv.appendMessage({ a: [1] });
    inv.setState("k", { b: { c: 1 } });
    assertDeepFrozen(inv.messages());
    assertDeepFrozen(inv.state());
    await inv.abort();
  });

  test("a write does not keep a reference to the caller's object", async () => {
    const { session, inv } = await openInvocation();
    const message = { text: "before", list: [1] };
    inv.appendMessage(message);
    message.text = "after";
    message.list.push(2);
    await inv.commit();
    assert.deepEqual(plain(session.messages()), [{ text: "before", list: [1] }]);
    assert.equal(Object.isFrozen(message), false, "the caller's object is not frozen by a write");
  });
});

suite("limits", () => {
  test("configured limits: LimitExceededError with limit/actual, nothing staged", async () => {
    const { session, inv } = await openInvocation({
      limits: { maxMessageBytes: 100, maxStateValueBytes: 50, maxCommitBytes: 400 },
    });
    inv.appendMessage("x".repeat(50));
    const e1 = thrown(() => inv.appendMessage("y".repeat(200)));
    assertError(e1, LimitExceededError, "LIMIT_EXCEEDED");
    assert.equal(e1.limit, 100);
    assert.equal(typeof e1.actual, "number");
    assert.ok(e1.actual > 100 && e1.actual < 300, `actual ${e1.actual}`);
    const e2 = thrown(() => inv.setState("big", "z".repeat(80)));
    assertError(e2, LimitExceededError, "LIMIT_EXCEEDED");
    assert.equal(e2.limit, 50);
    assert.ok(e2.actual > 50);
    assert.deepEqual(plain(inv.messages()), ["x".repeat(50)]);
    assert.deepEqual(plain(inv.state()), {});
    // A multi-byte message is measured in UTF-8 bytes.
    const e3 = thrown(() => inv.appendMessage("é".repeat(60)));
    assert.ok(e3 instanceof LimitExceededError, "60 × 'é' is 120 UTF-8 bytes");
    assert.ok(e3.actual >= 120);
    await inv.commit();
    assert.deepEqual(plain(session.messages()), ["x".repeat(50)]);
    assert.deepEqual(plain(session.state()), {});
    // The metadata lives in the head, which every lease and commit writes: held to maxStateValueBytes.
    const store = await SessionStore.memory({ limits: { maxStateValueBytes: 50 } });
    const e4 = await rejection(store.open("meta", { metadata: { note: "m".repeat(80) } }));
    assertError(e4, LimitExceededError, "LIMIT_EXCEEDED");
    assert.deepEqual([e4.limit, e4.actual], [50, 91]);
    assert.match(e4.message, /metadata.*maxStateValueBytes/);
    await assert.rejects(store.open("meta", { create: false }), { code: "NOT_FOUND" }, "nothing was created");
    await store.open("meta", { metadata: { note: "small" } });
  });

  test("a resume answer is held to the commit limit: refused at begin, nothing written, the interrupt still pending", async () => {
    const { session, inv } = await openInvocation({ limits: { maxMessageBytes: 100, maxCommitBytes: 1000 } });
    await inv.interrupt("question", { ask: "name?" });
    const before = { version: session.version, history: plain(await session.history()) };
    for (const answer of ["a".repeat(1000), { text: "b".repeat(2000) }]) {
      const error = await rejection(session.begin({ resume: answer }), "begin({ resume }) past the commit limit");
      assertError(error, LimitExceededError, "LIMIT_EXCEEDED");
      assert.equal(error.limit, 1000);
      assert.ok(error.actual > 1000, `actual ${error.actual}`);
      assert.equal(session.status, "interrupted");
      assert.equal(session.version, before.version);
      assert.deepEqual(plain(session.pendingInterrupt()), { reason: "question", payload: { ask: "name?" } });
      assert.deepEqual(plain(await session.history()), before.history);
    }
    // invoke() refuses it the same way, and an answer that fits (over the message limit: it is not a
    // message) resumes; the session's own export then imports under the same limits.
    await assert.rejects(session.invoke(() => {}, { resume: "c".repeat(1001) }), LimitExceededError);
    const fits = "d".repeat(900);
    const resumed = await session.begin({ resume: fits });
    await resumed.commit();
    assert.equal(session.status, "idle");
    const copy = await (await SessionStore.memory({ limits: { maxMessageBytes: 100, maxCommitBytes: 1000 } })).import(
      await session.export(),
    );
    assert.equal(copy.version, session.version);
  });

  test("the commit limit: the write that would cross it is refused, what was staged before commits", async () => {
    const { session, inv } = await openInvocation({ limits: { maxMessageBytes: 1000, maxCommitBytes: 250 } });
    const m = "m".repeat(90);
    let refused = null;
    let staged = 0;
    for (let i = 0; i < 4; i++) {
      try {
        inv.appendMessage(m);
        staged++;
      } catch (error) {
        refused = error;
        break;
      }
    }
    if (refused) {
      assertError(refused, LimitExceededError, "LIMIT_EXCEEDED");
      assert.equal(refused.limit, 250);
      assert.ok(refused.actual > 250);
      assert.ok(staged >= 1 && staged <= 2, `staged ${staged}`);
      assert.equal(inv.messages().length, staged);
      await inv.commit();
      assert.equal(session.messages().length, staged);
    } else {
      // Checked at commit instead: the commit is refused and nothing is written.
      const error = await rejection(inv.commit());
      assertError(error, LimitExceededError, "LIMIT_EXCEEDED");
      assert.equal(error.limit, 250);
      assert.equal(session.version, 0);
      await inv.abort();
    }
  });

  test("default limits: 1 MiB per message and per state value, 4 MiB per commit", async () => {
    const { session, inv } = await openInvocation();
    const mib = 1024 * 1024;
    const e1 = thrown(() => inv.appendMessage("a".repeat(mib)));
    assertError(e1, LimitExceededError, "LIMIT_EXCEEDED");
    assert.equal(e1.limit, mib);
    const e2 = thrown(() => inv.setState("k", "a".repeat(mib)));
    assert.equal(e2.limit, mib);
    const nearly = "b".repeat(mib - 100);
    inv.appendMessage(nearly);
    inv.appendMessage(nearly);
    inv.appendMessage(nearly);
    let refused;
    try {
      inv.appendMessage(nearly);
      inv.appendMessage(nearly);
    } catch (error) {
      refused = error;
    }
    if (refused) {
      assertError(refused, LimitExceededError, "LIMIT_EXCEEDED");
      assert.equal(refused.limit, 4 * mib);
      await inv.commit();
      assert.ok(session.messages().length <= 4);
    } else {
      const error = await rejection(inv.commit());
      assert.equal(error.limit, 4 * mib);
    }
  });

  test("limits reject bad values as ValidationError", async () => {
    for (const limits of [{ maxMessageBytes: -1 }, { maxCommitBytes: "big" }, { maxStateValueBytes: 1.5 }, { maxMessageBytes: 0 }]) {
      const error = await rejection(callAsync(() => SessionStore.memory({ limits })), JSON.stringify(limits));
      assertError(error, ValidationError, "INVALID_INPUT");
      // One message for every value that is not a positive integer (0 and -1 alike).
      assert.match(error.message, /must be a positive integer/, JSON.stringify(limits));
    }
  });

  test("an option a store, open or begin does not know is a ValidationError naming it (a misspelt one is not ignored)", async () => {
    const { memoryKv } = await import("agent-session/adapters");
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const kv = memoryKv();
    const cases = [
      [() => SessionStore.kv(kv, { encryptionkey: key }), "options.encryptionkey", /did you mean encryptionKey\?/],
      [() => SessionStore.memory({ leaseMS: 5 }), "options.leaseMS", /did you mean leaseMs\?/],
      [() => SessionStore.memory({ prefix: "p:" }), "options.prefix", /not an option here/],
      [() => SessionStore.memory({ limits: { maxMessageByte: 5 } }), "options.limits.maxMessageByte", /not an option here/],
      [() => SessionStore.memory({ cache: { maxSession: 5 } }), "options.cache.maxSession", /not an option here/],
    ];
    for (const [make, path, message] of cases) {
      const error = await rejection(callAsync(make), path);
      assertError(error, ValidationError, "INVALID_INPUT");
      assert.equal(error.path, path);
      assert.match(error.message, message);
    }
    assert.deepEqual(await kv.list(""), { keys: [] }, "nothing written by a refused store");
    // Every documented option is taken, on each backend.
    const store = await SessionStore.kv(kv, {
      owner: "o", leaseMs: 5000, heartbeat: true, idleTtlMs: 60_000, maxLifetimeMs: 120_000, snapshotEvery: 10,
      now: () => Date.now(), limits: { maxMessageBytes: 1000, maxStateValueBytes: 1000, maxCommitBytes: 5000 },
      onEvent: () => {}, encryptionKey: key, cache: { maxSessions: 5, maxBytes: 1 << 20, ttlMs: 1000 },
      liveFlushMs: 10, stopPollMs: 100, schema: { version: 1, migrate: {} }, prefix: "p:", allowNonAtomic: false, timeoutMs: 1000,
    });
    const error = await rejection(store.open("s", { creat: false }), "open");
    assert.equal(error.path, "options.creat");
    assert.deepEqual(await store.list(), { sessions: [] }, "no session was created by the misspelt option");
    const session = await store.open("s", { create: true, idleTtlMs: 1000, maxLifetimeMs: 2000, metadata: { a: 1 } });
    const busy = await rejection(session.begin({ onbusy: { waitMs: 10 } }), "begin");
    assert.equal(busy.path, "options.onbusy");
    assert.match(busy.message, /did you mean onBusy\?/);
    const wait = await rejection(session.begin({ onBusy: "wait" }), "begin");
    assert.match(wait.message, /must be "reject" or \{ waitMs: number \}/);
    const inv = await session.begin({ agent: "a", onBusy: { waitMs: 10 }, traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
    await inv.commit();
    await store.close();
  });

  test("a bad agent option is refused at its path, options.agent, saying what it got (audit42a N1, N2)", async () => {
    const store = await SessionStore.memory();
    const session = await store.open("agent-path");
    const inv = await session.begin();
    const cases = [
      ["", /options\.agent must be a string of 1 to 256 UTF-8 bytes, got 0 bytes/],
      [1, /options\.agent must be a string of 1 to 256 UTF-8 bytes, got number/],
      [null, /options\.agent must be a string of 1 to 256 UTF-8 bytes, got null/],
      ["\ud800", /options\.agent must be a string of 1 to 256 UTF-8 bytes without lone surrogates/],
      ["x".repeat(257), /options\.agent must be a string of 1 to 256 UTF-8 bytes, got at least 257 bytes/],
    ];
    for (const [agent, message] of cases) {
      for (const [what, call] of Object.entries({
        "inv.appendMessage": () => inv.appendMessage("x", { agent }),
        "inv.stateValue": () => inv.stateValue("k", { agent }),
        "session.messages": () => session.messages({ agent }),
      })) {
        const error = thrown(call, what);
        assertError(error, ValidationError, "INVALID_INPUT", what);
        assert.equal(error.path, "options.agent", what);
        assert.match(error.message, message, what);
      }
      const refused = await rejection(session.fork({ id: agent }), "fork");
      assert.equal(refused.path, "options.id");
    }
    await inv.abort();
    assert.equal(session.version, 0, "nothing was written");
  });

  test("a read's or write's options without an agent hold no other name: a misspelt agent is a ValidationError, not the default agent's data", async () => {
    const store = await SessionStore.memory();
    const session = await store.open("agents");
    await session.invoke((inv) => {
      inv.appendMessage("mine", { agent: "a" });
      inv.setState("k", "mine", { agent: "a" });
    });
    const inv = await session.begin();
    const view = await session.at(1);
    const calls = {
      "inv.appendMessage": () => inv.appendMessage("x", { agnt: "a" }),
      "inv.setState": () => inv.setState("k", "x", { agnt: "a" }),
      "inv.deleteState": () => inv.deleteState("k", { agnt: "a" }),
      "inv.messages": () => inv.messages({ agnt: "a" }),
      "inv.state": () => inv.state({ agnt: "a" }),
      "inv.stateValue": () => inv.stateValue("k", { agnt: "a" }),
      "session.messages": () => session.messages({ agnt: "a" }),
      "session.state": () => session.state({ agnt: "a" }),
      "session.stateValue": () => session.stateValue("k", { agnt: "a" }),
      "view.messages": () => view.messages({ agnt: "a" }),
      "view.state": () => view.state({ agnt: "a" }),
    };
    for (const [what, call] of Object.entries(calls)) {
      const error = thrown(call, what);
      assertError(error, ValidationError, "INVALID_INPUT", what);
      assert.equal(error.path, "options.agnt", what);
    }
    // No options, empty ones, and `agent` as given all read as before.
    assert.deepEqual(plain(inv.messages()), []);
    assert.deepEqual(plain(inv.messages({})), []);
    assert.deepEqual(plain(inv.messages(null)), []);
    assert.deepEqual(plain(inv.messages({ agent: "a" })), ["mine"]);
    assert.deepEqual(plain(session.state({ agent: "a" })), { k: "mine" });
    await inv.commit();
    await session.refresh();
    assert.deepEqual([plain(session.messages()), plain(session.state())], [[], {}], "the refused writes staged nothing");
    assert.deepEqual([plain(session.messages({ agent: "a" })), plain(session.state({ agent: "a" }))], [["mine"], { k: "mine" }]);
    await store.close();
  });
});

suite("list, delete, open", () => {
  test("list() pages with prefix, limit and cursor and describes each session", async () => {
    const { store, now } = await clockStore();
    const ids = ["p/1", "p/2", "p/3", "p/4", "p/5"];
    for (const id of ids) {
      await store.open(id);
      now.advance(10);
    }
    await store.open("q/1");
    await (await store.open("p/3")).invoke((inv) => inv.appendMessage("x"));
    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const page = await store.list({ prefix: "p/", limit: 2, cursor });
      assert.ok(page.sessions.length <= 2, "a page holds at most limit sessions");
      seen.push(...page.sessions);
      cursor = page.cursor;
      assert.ok(cursor === undefined || typeof cursor === "string");
      pages++;
      assert.ok(pages < 10, "paging must end");
    } while (cursor !== undefined);
    assert.ok(pages >= 3, `5 sessions with limit 2 need at least 3 pages, got ${pages}`);
    assert.deepEqual(seen.map((s) => s.id).sort(), ids);
    const p3 = seen.find((s) => s.id === "p/3");
    for (const key of ["createdAt", "expiresAt", "id", "status", "updatedAt", "version"]) {
      assert.ok(key in p3, `SessionInfo.${key}`);
    }
    assert.equal(p3.version, 1);
    assert.equal(p3.status, "idle");
    assert.equal(p3.expiresAt, null);
    assert.ok(p3.updatedAt > p3.createdAt);
    const p1 = seen.find((s) => s.id === "p/1");
    assert.equal(p1.version, 0);
    assert.equal(p1.createdAt, p1.updatedAt);
    const all = await store.list();
    assert.deepEqual(all.sessions.map((s) => s.id).sort(), [...ids, "q/1"].sort());
    assert.equal(all.cursor, undefined);
    assert.deepEqual((await store.list({ prefix: "zzz" })).sessions, []);
  });

  test("list() refuses a cursor it did not give, and takes an empty one as the first page, on every store", async () => {
    for (const store of [await SessionStore.memory(), await SessionStore.kv(memoryKv())]) {
      for (const id of ["a", "b", "c"]) await store.open(id);
      const first = await store.list({ limit: 2 });
      assert.deepEqual(first.sessions.map((s) => s.id), ["a", "b"]);
      for (const cursor of ["garbage", "h/a~", "c1.", "zzzz"]) {
        await assert.rejects(store.list({ cursor }), (error) => {
          assert.ok(error instanceof ValidationError, String(error));
          assert.equal(error.code, "INVALID_INPUT");
          assert.equal(error.path, "options.cursor");
          assert.match(error.message, /cursor of the page before, or none for the first page/);
          return true;
        });
      }
      assert.deepEqual((await store.list({ cursor: "" })).sessions.map((s) => s.id), ["a", "b", "c"]);
      const rest = await store.list({ cursor: first.cursor });
      assert.deepEqual(rest.sessions.map((s) => s.id), ["c"]);
      assert.equal(rest.cursor, undefined);
      await store.close();
    }
  });

  test("list() shows a running session as running", async () => {
    const { store } = await clockStore();
    const session = await store.open("listed-running");
    const inv = await session.begin();
    assert.equal((await store.list({ prefix: "listed-running" })).sessions[0].status, "running");
    await inv.commit();
    assert.equal((await store.list({ prefix: "listed-running" })).sessions[0].status, "idle");
  });

  test("delete() returns true then false; the session is gone", async () => {
    const { store } = await clockStore();
    const session = await store.open("to-delete");
    await session.invoke((inv) => inv.appendMessage("bye"));
    assert.equal(await callAsync(() => store.delete("to-delete")), true);
    assert.equal(await store.delete("to-delete"), false);
    assert.equal(await store.delete("never-existed"), false);
    const error = await rejection(store.open("to-delete", { create: false }));
    assertError(error, NotFoundError, "NOT_FOUND");
    assert.deepEqual((await store.list({ prefix: "to-delete" })).sessions, []);
    const again = await store.open("to-delete");
    assert.equal(again.version, 0);
    assert.deepEqual(plain(again.messages()), []);
  });

  test("open(id, { create: false }) of an absent session: NotFoundError, and nothing is created", async () => {
    const { store } = await clockStore();
    const error = await rejection(callAsync(() => store.open("absent", { create: false })));
    assertError(error, NotFoundError, "NOT_FOUND");
    assert.deepEqual((await store.list()).sessions, []);
    const created = await store.open("absent", { create: true });
    assert.equal(created.version, 0);
    const opened = await store.open("absent", { create: false });
    assert.equal(opened.id, "absent");
  });
});

suite("interrupt reasons", () => {
  test("a reason with a lone surrogate is a ValidationError and the invocation stays open", async () => {
    const session = await (await SessionStore.memory()).open("reason");
    const inv = await session.begin();
    const error = await rejection(inv.interrupt("why\ud800"));
    assertError(error, ValidationError, "INVALID_INPUT");
    assert.equal(session.status, "running");
    assert.equal(await inv.interrupt("why?"), 1);
    assert.deepEqual(plain(session.pendingInterrupt()), { reason: "why?", payload: null });
  });
});

suite("reasons and parts over their limits name what was refused", () => {
  test("an interrupt reason or a stop reason over 4096 UTF-8 bytes is a ValidationError naming which, at its path; a part over maxMessageBytes is a LimitExceededError naming a part; the turn goes on", async () => {
    const store = await SessionStore.memory({ limits: { maxMessageBytes: 1000 } });
    const session = await store.open("reason-limits");
    const inv = await session.begin();
    const interrupt = await rejection(inv.interrupt("r".repeat(4097)));
    assertError(interrupt, ValidationError, "INVALID_INPUT");
    assert.equal(interrupt.path, "reason");
    assert.match(interrupt.message, /^an interrupt reason must be at most 4096 UTF-8 bytes, got 4097/);
    const stop = await rejection(session.stop({ reason: "s".repeat(5000), graceMs: 0 }));
    assertError(stop, ValidationError, "INVALID_INPUT");
    assert.equal(stop.path, "options.reason");
    assert.match(stop.message, /^a stop reason must be at most 4096 UTF-8 bytes, got 5000/);
    const part = thrown(() => inv.emit({ text: "p".repeat(1000) }));
    assertError(part, LimitExceededError, "LIMIT_EXCEEDED");
    assert.match(part.message, /^a part is \d+ bytes/);
    assert.equal(inv.signal.aborted, false, "nothing stopped the turn");
    inv.appendMessage("still here");
    assert.equal(await inv.commit(), 1);
    await store.close();
  });
});

suite("own __proto__ keys", () => {
  test("an own \"__proto__\" key (as JSON.parse makes) round-trips in messages, state values and state keys", async () => {
    const session = await (await SessionStore.memory()).open("proto");
    await session.invoke((inv) => {
      inv.appendMessage(JSON.parse('{"__proto__": {"x": 1}, "a": 2}'));
      inv.setState("__proto__", 5);
      inv.setState("k", JSON.parse('{"__proto__": 1}'));
    });
    const message = session.messages()[0];
    assert.deepEqual(Object.keys(message), ["__proto__", "a"]);
    assert.equal(Object.getPrototypeOf(message), Object.prototype, "the prototype is not replaced");
    assert.equal(JSON.stringify(message), '{"__proto__":{"x":1},"a":2}');
    assert.deepEqual(Object.keys(session.state()), ["__proto__", "k"]);
    assert.equal(JSON.stringify(session.state()), '{"__proto__":5,"k":{"__proto__":1}}');
    assert.equal(Object.getPrototypeOf(session.state()), Object.prototype);
  });
});
