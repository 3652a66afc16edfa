// A dedicated module worker for the live turn tests: it loads the package and runs the test
// functions it is sent ({ id, source, arg } -> { id, ok, value | error }), like a tab does.
import { describeError, environment, realm, run } from "./live-fixture.js";

const loaded = environment();

self.onmessage = async ({ data }) => {
  try {
    const value = await run(await loaded, data.source, data.arg);
    self.postMessage({ id: data.id, ok: true, value });
  } catch (error) {
    self.postMessage({ id: data.id, ok: false, error: describeError(error) });
  }
};
loaded.then(
  () => self.postMessage({ ready: true }),
  (error) => self.postMessage({ ready: false, error: describeError(error) }),
);

// Uncaught errors go to the page's console, where the test collects them.
const report = (text) => self.postMessage({ log: text, level: "error" });
self.addEventListener("error", (event) => report(`uncaught in ${realm}: ${event.message}`));
self.addEventListener("unhandledrejection", (event) => report(`unhandled rejection in ${realm}: ${event.reason?.stack ?? event.reason}`));
