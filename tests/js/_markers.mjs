// The marker strings of the encryption-at-rest leak tests (tests/js/encryption.test.mjs,
// tests/js/deno.test.mjs, tests/browser/encryption.test.mjs): one unique random string per kind of
// application data, which a raw dump of the stored bytes must not contain once a key is given.
import { randomBytes } from "node:crypto";

const KINDS = { message: "msg", messageKey: "msgkey", state: "state", stateKey: "statekey", metadata: "meta",
  reason: "reason", payload: "payload", live: "live", agent: "agent" };

/** `{ message, messageKey, state, stateKey, metadata, reason, payload, live, agent }`, each unique. */
export function newMarkers(tag = "") {
  return Object.fromEntries(
    Object.entries(KINDS).map(([kind, name]) => [kind, `${name.toUpperCase()}${tag}_${randomBytes(12).toString("hex")}`]),
  );
}
