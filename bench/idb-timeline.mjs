// Where an IndexedDB turn's time goes, step by step, for agent-session and the hand-written protocol
// (bench/baselines.mjs (b)) in one fresh headless Chromium page: the IndexedDB calls and events of each
// turn are stamped (transaction created, get/put/add issued, their success events, complete), with the
// caller's own steps (call, begun, staged, done), and the medians, means and worst of each interval are
// printed; "mem" is the same turn on SessionStore.memory() (the engine and bindings without IndexedDB).
// The stamps themselves cost a few µs each. Usage: node bench/idb-timeline.mjs [SIZE=10] [TURNS=300]
// (not part of scripts/bench)
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";

const size = Number(process.argv[2] ?? 10);
const turns = Number(process.argv[3] ?? 300);
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  const out = await page.evaluate(async ({ size, turns }) => {
    const { SessionStore } = await import("/js/entry/browser.js");
    const { message } = await import("/bench/message.mjs");
    const { idbProtocol } = await import("/bench/baselines.mjs");
    const log = [];
    let on = false;
    // Time spent inside the IndexedDB calls themselves (synchronous part), per call kind.
    let calls = {};
    const mark = (what) => on && log.push([what, performance.now()]);
    const open = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (...args) {
      mark("tx");
      const t0 = performance.now();
      const tx = open.apply(this, args);
      if (on) calls.transaction = (calls.transaction ?? 0) + performance.now() - t0;
      tx.addEventListener("complete", () => mark("complete"));
      return tx;
    };
    for (const method of ["get", "put", "add"]) {
      const call = IDBObjectStore.prototype[method];
      IDBObjectStore.prototype[method] = function (...args) {
        mark(method);
        const t0 = performance.now();
        const request = call.apply(this, args);
        if (on) calls[method] = (calls[method] ?? 0) + performance.now() - t0;
        request.addEventListener("success", () => mark(`${method}-ok`));
        return request;
      };
    }
    const tag = Math.random().toString(36).slice(2);
    const store = await SessionStore.indexedDb({ database: `timeline-as-${tag}` });
    const session = await store.open("s");
    const memory = await (await SessionStore.memory()).open("s");
    const hand = await (await idbProtocol(`timeline-b-${tag}`)).writer("s");
    for (let i = 0; i < size; i += 100) {
      const inv = await session.begin();
      for (let j = i; j < Math.min(size, i + 100); j++) inv.appendMessage(message(j));
      await inv.commit();
    }
    await hand.fill(Array.from({ length: size }, (_, j) => message(j)));
    const sessionTurn = (s) => async (k) => {
      mark("call");
      const inv = await s.begin();
      mark("begun");
      inv.appendMessage(message(k));
      inv.appendMessage(message(k + 1));
      mark("staged");
      await inv.commit();
      mark("done");
    };
    const impls = {
      "agent-session": sessionTurn(session),
      mem: sessionTurn(memory),
      "(b) idb": async (k) => {
        mark("call");
        const token = await hand.begin();
        mark("begun");
        const messages = [message(k), message(k + 1)];
        mark("staged");
        await hand.commit(token, messages);
        mark("done");
      },
    };
    const steps = {};
    // A first round unrecorded (JIT, connections), then the recorded one; turns interleaved.
    for (const recorded of [false, true]) {
      for (let k = 0; k < turns; k++) {
        for (const [name, turn] of Object.entries(impls)) {
          log.length = 0;
          calls = {};
          on = recorded;
          await turn(k);
          on = false;
          if (!recorded) continue;
          const of = (steps[name] ??= {});
          for (let i = 1; i < log.length; i++) {
            const step = `${String(i).padStart(2)} ${log[i - 1][0]} > ${log[i][0]}`;
            (of[step] ??= []).push(log[i][1] - log[i - 1][1]);
          }
          (of.total ??= []).push(log[log.length - 1][1] - log[0][1]);
          for (const [method, ms] of Object.entries(calls)) (of[`   in ${method}() calls`] ??= []).push(ms);
        }
      }
    }
    const sorted = (xs) => [...xs].sort((a, b) => a - b);
    const lines = [];
    for (const [name, of] of Object.entries(steps)) {
      lines.push(`${name} (${size} messages; ms: median, mean, worst of ${turns} turns)`);
      for (const [step, xs] of Object.entries(of)) {
        // A step seen in only a few turns (a snapshot's extra puts) is left out.
        if (xs.length < turns / 10) continue;
        const s = sorted(xs);
        const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
        lines.push(`  ${step.padEnd(26)} ${s[s.length >> 1].toFixed(3)}  ${mean.toFixed(3)}  ${s[s.length - 1].toFixed(2)}`);
      }
    }
    return lines.join("\n");
  }, { size, turns });
  console.log(out);
} finally {
  await chrome.stop();
}
