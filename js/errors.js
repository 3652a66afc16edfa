// The error classes of the public API. Rust builds them only through `makeError` (src/bindings/
// errors.rs); the entry points re-export the copy that wasm-bindgen places next to the .wasm, so that
// `instanceof` holds for errors thrown by the library.

export class AgentSessionError extends Error {
  constructor(message, fields) {
    super(message, fields && "cause" in fields ? { cause: fields.cause } : undefined);
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (key !== "cause" && value !== undefined) Object.defineProperty(this, key, { value, enumerable: true });
      }
    }
  }
}

function define(Class, name, code) {
  Object.defineProperty(Class.prototype, "name", { value: name, writable: true, configurable: true });
  if (code) Object.defineProperty(Class.prototype, "code", { value: code, writable: true, configurable: true });
  return Class;
}

export class ConcurrencyError extends AgentSessionError {}
export class LeaseLostError extends AgentSessionError {}
export class ConflictError extends AgentSessionError {}
export class InvalidTransitionError extends AgentSessionError {}
export class SessionClosedError extends InvalidTransitionError {}
export class SessionExpiredError extends InvalidTransitionError {}
export class NotFoundError extends AgentSessionError {}
export class ValidationError extends AgentSessionError {}
export class LimitExceededError extends AgentSessionError {}
export class CorruptRecordError extends AgentSessionError {}
export class StorageError extends AgentSessionError {}
export class UnsafeStoreError extends AgentSessionError {}
export class StoreClosedError extends AgentSessionError {}
export class StopRequestedError extends AgentSessionError {}
export class SchemaVersionError extends AgentSessionError {}
export class MigrationError extends AgentSessionError {}

define(AgentSessionError, "AgentSessionError", "AGENT_SESSION");
/** The class of each code Rust may pass to `makeError` (exported for tests/js/types-drift.test.mjs,
 * not by the package entry points). */
export const byCode = Object.freeze({
  CONCURRENT_INVOCATION: define(ConcurrencyError, "ConcurrencyError", "CONCURRENT_INVOCATION"),
  LEASE_LOST: define(LeaseLostError, "LeaseLostError", "LEASE_LOST"),
  VERSION_CONFLICT: define(ConflictError, "ConflictError", "VERSION_CONFLICT"),
  INVALID_TRANSITION: define(InvalidTransitionError, "InvalidTransitionError", "INVALID_TRANSITION"),
  SESSION_CLOSED: define(SessionClosedError, "SessionClosedError", "SESSION_CLOSED"),
  SESSION_EXPIRED: define(SessionExpiredError, "SessionExpiredError", "SESSION_EXPIRED"),
  NOT_FOUND: define(NotFoundError, "NotFoundError", "NOT_FOUND"),
  INVALID_INPUT: define(ValidationError, "ValidationError", "INVALID_INPUT"),
  LIMIT_EXCEEDED: define(LimitExceededError, "LimitExceededError", "LIMIT_EXCEEDED"),
  CORRUPT_RECORD: define(CorruptRecordError, "CorruptRecordError", "CORRUPT_RECORD"),
  STORAGE: define(StorageError, "StorageError", "STORAGE"),
  UNSAFE_STORE: define(UnsafeStoreError, "UnsafeStoreError", "UNSAFE_STORE"),
  STORE_CLOSED: define(StoreClosedError, "StoreClosedError", "STORE_CLOSED"),
  STOP_REQUESTED: define(StopRequestedError, "StopRequestedError", "STOP_REQUESTED"),
  SCHEMA_VERSION: define(SchemaVersionError, "SchemaVersionError", "SCHEMA_VERSION"),
  MIGRATION_FAILED: define(MigrationError, "MigrationError", "MIGRATION_FAILED"),
});

/** The error of class `code` with `message` and the class's extra fields. */
export function makeError(code, message, fields) {
  const Class = byCode[code] ?? AgentSessionError;
  return new Class(message, fields);
}
