// A module worker for the IndexedDB tests, dedicated or shared: it loads the package and runs the
// test functions it is sent ({ id, source, arg } -> { id, ok, value | error }), like a tab does.
import { describeError, environment, realm, run } from "./idb-fixture.js";

const loaded = environment();
const ports = [];

function serve(port) {
  ports.push(port);
  port.onmessage = async ({ data }) => {
    try {
      const value = await run(await loaded, data.source, data.arg);
      port.postMessage({ id: data.id, ok: true, value });
    } catch (error) {
      port.postMessage({ id: data.id, ok: false, error: describeError(error) });
    }
  };
  loaded.then(
    () => port.postMessage({ ready: true }),
    (error) => port.postMessage({ ready: false, error: describeError(error) }),
  );
}

// Uncaught errors go to the pages' consoles, where the test collects them.
const report = (text) => ports.forEach((port) => port.postMessage({ log: text, level: "error" }));
self.addEventListener("error", (event) => report(`uncaught in ${realm}: ${event.message}`));
self.addEventListener("unhandledrejection", (event) => report(`unhandled rejection in ${realm}: ${event.reason?.stack ?? event.reason}`));

if (realm === "shared worker") self.addEventListener("connect", (event) => serve(event.ports[0]));
else serve(self);
