// toJsonText (js/json.js) of this checkout against another copy of json.js (with its errors.js beside
// it), interleaved in one process: a 440-byte state value, a message, a LangGraph channel blob and
// checkpoint record, a number, 40 messages, and a Strands stream event (a class whose toJSON gives
// plain data, as inv.emit gets it from the Strands drop-in; and one whose data holds a class instance); 4 timed rounds of each after 2 untimed, the order
// alternating. Usage: node bench/json-ab.mjs path/to/other/json.js   (not part of scripts/bench)
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

if (!process.argv[2]) throw new Error("usage: node bench/json-ab.mjs path/to/other/json.js");
const other = await import(pathToFileURL(resolve(process.argv[2])).href);
const mine = await import("../js/json.js");
const msg = (i) => ({ role: i % 2 ? "assistant" : "user", content: [{ type: "text", text: "x".repeat(150) + i }], metadata: { id: `m-${i}`, tokens: { in: 12, out: 40 }, tags: ["a", "b"] } });
const values = {
  "state 440 B": { v: "x".repeat(420) },
  message: msg(1),
  "LangGraph blob": { t: "json", s: JSON.stringify({ lc: 1, type: "constructor", id: ["x"], kwargs: { content: "y".repeat(300), tool_calls: [] } }) },
  "checkpoint record": { id: "1ef-abc", p: "1ef-abd", ts: "2026-12-03T00:00:00Z", v: { a: "00001.0.1", b: "00002.0.2", c: "00003.0.3" }, s: { __start__: { __start__: "00001" } }, n: [], m: { source: "loop", step: 3, parents: {} } },
  number: 42,
  "40 messages": Array.from({ length: 40 }, (_, i) => msg(i)),
  "Strands stream event (toJSON)": new (class ModelStreamUpdateEvent {
    type = "modelStreamUpdateEvent";
    agent = { messages: Array.from({ length: 40 }, (_, i) => msg(i)) };
    event = { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text: "a".repeat(200) } };
    toJSON() {
      return { type: this.type, event: this.event };
    }
  })(),
  // As Strands 1.19 sends it: the model's event inside is an instance of its own class too.
  "Strands stream event, class inside": new (class ModelStreamUpdateEvent {
    type = "modelStreamUpdateEvent";
    event = new (class ModelContentBlockDeltaEvent {
      type = "modelContentBlockDeltaEvent";
      contentBlockIndex = 0;
      delta = { type: "textDelta", text: "a".repeat(200) };
    })();
    toJSON() {
      return { type: this.type, event: this.event };
    }
  })(),
};
console.log("| value | other (µs) | this (µs) | this / other |\n| --- | ---: | ---: | ---: |");
for (const [name, value] of Object.entries(values)) {
  const calls = name === "40 messages" ? 5000 : 200000;
  const total = { other: 0, mine: 0 };
  for (let round = 0; round < 6; round++) {
    for (const [key, module] of round % 2 ? [["other", other], ["mine", mine]] : [["mine", mine], ["other", other]]) {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) module.toJsonText(value, "v");
      if (round >= 2) total[key] += performance.now() - t0;
    }
  }
  const us = (t) => ((t / 4 / calls) * 1000).toFixed(2);
  console.log(`| ${name} | ${us(total.other)} | ${us(total.mine)} | ${(total.mine / total.other).toFixed(2)} |`);
}
