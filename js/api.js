// The public API: the wasm-bindgen classes and the error classes, plus the two members that a
// wasm-bindgen class cannot declare itself (a Symbol-named method, and a method resolving to `this`).
import { Invocation, Session } from "./wasm/agent_session.js";

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
