// The commit channel of browser-shared stores (js/web.js), as a unit: two realms are two instances of
// the module (imported under two URLs), talking through Node's BroadcastChannel, which delivers
// between channels of one name as browsers do. What is checked: a realm alone posts nothing; a realm
// that learns of a peer posts what it kept back since the peer joined, and every later commit; a
// realm hears a replay only if it is news to it; "bye" takes a realm off the others' lists.
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

const realm = (label) => import(new URL(`../../js/web.js?realm=${label}-${randomUUID()}`, import.meta.url).href);

// Every member a test opens is closed after it, passed or failed (an open channel keeps Node running).
const opened = [];
function join(web, name, onMessage) {
  const member = web.openChannel(name, onMessage);
  opened.push([web, member]);
  return member;
}
afterEach(() => {
  for (const [web, member] of opened.splice(0)) web.closeChannel(member);
});

// Lets every message in flight (and the outbox's timer) be delivered.
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

// Counts the commit notices (messages with an id) put on any BroadcastChannel of this process.
function countPosts() {
  const post = BroadcastChannel.prototype.postMessage;
  const posts = [];
  BroadcastChannel.prototype.postMessage = function (message) {
    if (typeof message?.id === "string") posts.push(message);
    return post.call(this, message);
  };
  return { posts, restore: () => (BroadcastChannel.prototype.postMessage = post) };
}

const notice = (id, version) => ({ id, version, status: "idle" });

test("a realm alone posts no notice; one that joins later hears, replayed, what was committed after it joined, and then every commit", async () => {
  const counter = countPosts();
  const [a, b] = [await realm("a"), await realm("b")];
  const name = `channel-${randomUUID()}`;
  const heardByB = [];
  try {
    const memberA = join(a, name, () => {});
    a.postMessage(memberA, notice("s", 1));
    a.postMessage(memberA, notice("s", 2));
    await settle();
    assert.deepEqual(counter.posts, [], "nobody else is on the channel: nothing is posted");

    // B joins; A hears its "open" and replays what it committed alone within the margin.
    const memberB = join(b, name, (message) => heardByB.push(message));
    await settle();
    assert.deepEqual(heardByB.map(({ id, version }) => [id, version]), [["s", 1], ["s", 2]]);
    assert.ok(heardByB.every((message) => message.replay === true));

    // From now on every commit of either is posted and heard, once.
    a.postMessage(memberA, notice("s", 3));
    await settle();
    assert.deepEqual(heardByB.map(({ version }) => version), [1, 2, 3]);
    const heardByA = [];
    const otherA = join(a, name, (message) => heardByA.push(message)); // a second store in realm A
    b.postMessage(memberB, notice("t", 7));
    await settle();
    assert.deepEqual(heardByA.map(({ id, version }) => [id, version]), [["t", 7]]);

    // B leaves: A is alone again and posts nothing more.
    b.closeChannel(memberB);
    await settle();
    const before = counter.posts.length;
    a.postMessage(memberA, notice("s", 4));
    await settle();
    assert.equal(counter.posts.length, before, "alone again after the other realm said bye");
    a.closeChannel(otherA);
    a.closeChannel(memberA);
  } finally {
    counter.restore();
  }
});

test("a replay reaches a realm only if it is news to it; a realm does not replay what it committed long before a peer joined", async () => {
  const [a, b] = [await realm("a"), await realm("b")];
  const name = `channel-${randomUUID()}`;
  const heardByA = [];
  const memberA = join(a, name, (message) => heardByA.push(message));
  const memberB = join(b, name, () => {});
  await settle();
  b.postMessage(memberB, notice("s", 5));
  await settle();
  // Replays as another realm would post them: of a version A heard, and of a newer one.
  const raw = new BroadcastChannel(name);
  raw.unref?.();
  raw.postMessage({ ...notice("s", 5), from: "another realm", replay: true });
  raw.postMessage({ ...notice("s", 4), from: "another realm", replay: true });
  raw.postMessage({ ...notice("s", 6), from: "another realm", replay: true });
  raw.postMessage({ ...notice("other", 1), from: "another realm", replay: true });
  await settle();
  raw.close();
  assert.deepEqual(heardByA.map(({ id, version }) => [id, version]), [["s", 5], ["s", 6], ["other", 1]]);

  // B alone after A leaves; it commits, and a realm joins a minute later (its "open" carries its
  // clock): what B committed more than the margin before that is in the store the newcomer reads.
  a.closeChannel(memberA);
  await settle();
  b.postMessage(memberB, notice("u", 1));
  await settle();
  const late = await realm("late");
  const heardByLate = [];
  const now = Date.now;
  Date.now = () => now() + 60_000;
  let memberLate;
  try {
    memberLate = join(late, name, (message) => heardByLate.push(message));
  } finally {
    Date.now = now;
  }
  await settle();
  assert.deepEqual(heardByLate, [], "a commit from before the newcomer's margin is not replayed");
  b.closeChannel(memberB);
  late.closeChannel(memberLate);
});

test("a realm of an earlier version (its notices name no sender, it never says open) counts as a peer for good: every commit is posted to it", async () => {
  const counter = countPosts();
  const a = await realm("a");
  const name = `channel-${randomUUID()}`;
  try {
    const memberA = join(a, name, () => {});
    a.postMessage(memberA, notice("s", 1));
    await settle();
    assert.equal(counter.posts.length, 0, "alone: kept back");
    const earlier = new BroadcastChannel(name);
    earlier.unref?.();
    const heardByEarlier = [];
    earlier.onmessage = (event) => heardByEarlier.push(event.data);
    earlier.postMessage(notice("t", 3)); // as the earlier version posts a commit: no "from", no "open"
    await settle();
    a.postMessage(memberA, notice("s", 2));
    a.postMessage(memberA, notice("s", 3));
    await settle();
    earlier.close();
    assert.deepEqual(heardByEarlier.filter((m) => typeof m?.id === "string").map(({ id, version }) => [id, version]), [["s", 2], ["s", 3]]);
  } finally {
    counter.restore();
  }
});

test("a realm whose BroadcastChannel constructor throws has no channel: joining, posting, waking and leaving do not throw", async () => {
  const web = await realm("no-channel");
  const Original = globalThis.BroadcastChannel;
  globalThis.BroadcastChannel = class {
    constructor() {
      throw new DOMException("not here", "SecurityError");
    }
  };
  try {
    const member = web.openChannel(`channel-${randomUUID()}`, () => {});
    assert.equal(member, null);
    web.postMessage(member, notice("s", 1));
    web.closeChannel(member);
    web.listenLive(`live-${randomUUID()}`);
    web.wakeLive(`live-${randomUUID()}`, "s");
  } finally {
    globalThis.BroadcastChannel = Original;
  }
});

test("a Web Locks request that throws at once: holdLock reports no lock (liveness falls back to lease expiry) instead of throwing", async () => {
  const web = await realm("no-locks");
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", {
    configurable: true,
    value: { locks: { request: () => { throw new DOMException("not here", "SecurityError"); } } },
  });
  try {
    assert.equal(web.holdLock("agent-session/db/instance"), null);
  } finally {
    if (descriptor) Object.defineProperty(globalThis, "navigator", descriptor);
    else delete globalThis.navigator;
  }
});
