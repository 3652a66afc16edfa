// The demo's service worker: runs the scripted agent (agent.js) outside the page, so that a turn keeps
// streaming while the page that asked for it reloads (the page then resumes with session.follow({
// after })). It also keeps a copy of the demo's files, so that the demo opens without a network once
// it was opened with one.
//
// A module service worker cannot await at its top level, so it loads the package through api.js and
// initialises the WebAssembly itself (js/entry/browser.js does the same with a top-level await).
import init from "../js/wasm/agent_session.js";
import * as lib from "../js/api.js";
import { agentHost } from "./agent.js";

const ready = init({ module_or_path: new URL("../js/wasm/agent_session_bg.wasm", import.meta.url) });
const channels = new Map();
const post = (message) => {
  const name = `agent-session-demo:${message.database}`;
  if (!channels.has(name)) channels.set(name, new BroadcastChannel(name));
  channels.get(name).postMessage(message);
};
const host = agentHost(lib, { post });

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

// { type: "turn", request } with a MessagePort: the reply (began or refused) goes to the port; the
// service worker stays alive until the turn ended.
self.addEventListener("message", (event) => {
  const port = event.ports[0];
  if (event.data?.type !== "turn" || !port) return;
  event.waitUntil(
    (async () => {
      await ready;
      const { reply, done } = host.handle(event.data.request);
      port.postMessage(await reply);
      await done;
    })().catch((error) => {
      port.postMessage({ ok: false, error: { name: error?.name ?? "Error", message: String(error?.message ?? error) } });
    }),
  );
});

// Network first, the cached copy when offline: the demo's own files and the package, nothing else.
const CACHE = "agent-session-demo-v1";
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/www/") && !url.pathname.startsWith("/js/")) return;
  event.respondWith(
    fetch(event.request).then(
      (response) => {
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(event.request, copy)));
        }
        return response;
      },
      async (error) => (await caches.match(event.request, { ignoreSearch: true })) ?? Promise.reject(error),
    ),
  );
});
