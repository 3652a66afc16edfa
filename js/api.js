// The public API: the wasm-bindgen classes and the error classes, plus the two members that a
// wasm-bindgen class cannot declare itself (a Symbol-named method, and a method resolving to `this`).
import { Invocation, Session } from "./wasm/agent_session.js";

export { SessionStore, Session, Invocation, SessionView } from "./wasm/agent_session.js";
export * from "./wasm/errors.js";

const asyncDispose = Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose");
Object.defineProperty(Invocation.prototype, asyncDispose, {
  value: function () {
    return this.dispose();
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
