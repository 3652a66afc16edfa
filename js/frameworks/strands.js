// agent-session/strands: session backends for Strands Agents TS (@strands-agents/sdk ^1.19), written
// on the public agent-session API only (SessionStore, Session, Invocation). One class per file:
//
// - AgentSessionStorage (strands/storage.js): a Strands `Storage` over any SessionStore, for Strands'
//   own SessionManager; atomic per write, but it cannot guard a turn.
// - AgentSessionManager (strands/manager.js): a Strands `Plugin` that replaces SessionManager and
//   guards each agent invocation with one agent-session invocation, as a live turn: a stop of the
//   session cancels the agent, and its stream events are forwarded to the turn's live log
//   (`streamEventPart` is the default projection).
export { AgentSessionStorage } from "./strands/storage.js";
export { AgentSessionManager, streamEventPart } from "./strands/manager.js";
