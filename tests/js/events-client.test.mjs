// static/chat/events-client.js against a scripted AppSync Events server: the handshake, the
// subscribe/publish frames and their acknowledgements, keep-alive, errors and reconnects.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { installClock } from "./clock.mjs";
import { importStatic } from "./load.mjs";

const { EventsClient } = await importStatic("chat/events-client.js");

// A WebSocket whose far end is the test: it records what the client sends and lets the test
// deliver frames and close the connection the way a server would.
class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 3;
  static opened = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = FakeWebSocket.CONNECTING;
    this.sent = [];
    this.closedWith = null;
    this.listeners = {};
    FakeWebSocket.opened.push(this);
  }
  addEventListener(type, listener) { (this.listeners[type] ||= []).push(listener); }
  send(text) {
    assert.equal(this.readyState, FakeWebSocket.OPEN, "sent on a socket that is not open");
    this.sent.push(JSON.parse(text));
  }
  close(code) { this.closedWith = code; }
  // --- the server's side
  emit(type, event) { (this.listeners[type] || []).forEach((listener) => listener(event)); }
  open() { this.readyState = FakeWebSocket.OPEN; this.emit("open", {}); }
  deliver(frame) { this.emit("message", { data: typeof frame === "string" ? frame : JSON.stringify(frame) }); }
  drop(code) { this.readyState = FakeWebSocket.CLOSED; this.emit("close", { code }); }
  frames(type) { return this.sent.filter((f) => f.type === type); }
}

const ENDPOINT = {
  realtimeUrl: "wss://events.example/event/realtime",
  authorization: () => ({ host: "events.example", Authorization: "token-1" }),
  noReconnectCodes: [4401],
};

let clock;
let states;
let randomBefore;
beforeEach(() => {
  globalThis.WebSocket = FakeWebSocket;
  FakeWebSocket.opened = [];
  clock = installClock();
  states = [];
  randomBefore = Math.random;
});
afterEach(() => {
  clock.uninstall();
  Math.random = randomBefore;
});

const settle = () => new Promise((resolve) => setImmediate(resolve));

async function connected(endpoint = ENDPOINT, options = {}) {
  const client = new EventsClient(endpoint, { onState: (state, detail) => states.push([state, detail]), ...options });
  await client.connect();
  const socket = FakeWebSocket.opened.at(-1);
  socket.open();
  socket.deliver({ type: "connection_ack", connectionTimeoutMs: 10000 });
  return { client, socket };
}

test("the handshake: subprotocol with the base64url authorization header, then connection_init", async () => {
  const client = new EventsClient(ENDPOINT, { onState: (state) => states.push(state) });
  await client.connect();
  const [socket] = FakeWebSocket.opened;
  assert.equal(socket.url, ENDPOINT.realtimeUrl);
  assert.equal(socket.protocols[0], "aws-appsync-event-ws");
  const header = socket.protocols[1];
  assert.match(header, /^header-[A-Za-z0-9_-]+$/);
  const decoded = Buffer.from(header.slice("header-".length), "base64url").toString("utf8");
  assert.deepEqual(JSON.parse(decoded), { host: "events.example", Authorization: "token-1" });
  assert.deepEqual(socket.sent, []);
  socket.open();
  assert.deepEqual(socket.sent, [{ type: "connection_init" }]);
  let ready = false;
  client.whenReady().then(() => { ready = true; });
  await settle();
  assert.equal(ready, false);
  socket.deliver({ type: "connection_ack", connectionTimeoutMs: 10000 });
  await settle();
  assert.equal(ready, true);
  assert.deepEqual(states, ["connecting", "open"]);
});

test("subscriptions wait for the ack, then deliver only their own channel's events", async () => {
  const client = new EventsClient(ENDPOINT);
  const got = [];
  client.subscribe("/chat/out/user-1", (event) => got.push(event));
  await client.connect();
  const socket = FakeWebSocket.opened[0];
  socket.open();
  assert.deepEqual(socket.frames("subscribe"), []);
  socket.deliver({ type: "connection_ack", connectionTimeoutMs: 10000 });
  const [subscribe] = socket.frames("subscribe");
  assert.equal(subscribe.channel, "/chat/out/user-1");
  assert.deepEqual(subscribe.authorization, ENDPOINT.authorization());
  socket.deliver({ type: "data", id: subscribe.id, event: JSON.stringify({ n: 1 }) });
  socket.deliver({ type: "data", id: "someone-else", event: JSON.stringify({ n: 2 }) });
  socket.deliver({ type: "data", id: subscribe.id, event: "{not json" });
  socket.deliver("not a frame at all");
  socket.deliver({ type: "data", id: subscribe.id, event: JSON.stringify({ n: 3 }) });
  assert.deepEqual(got, [{ n: 1 }, { n: 3 }]);
});

test("unsubscribe sends the wire id and stops delivery", async () => {
  const { client, socket } = await connected();
  const got = [];
  const unsubscribe = client.subscribe("/c", (event) => got.push(event));
  const [{ id }] = socket.frames("subscribe");
  unsubscribe();
  assert.deepEqual(socket.frames("unsubscribe"), [{ type: "unsubscribe", id }]);
  socket.deliver({ type: "data", id, event: "1" });
  assert.deepEqual(got, []);
});

test("publish sends JSON-encoded events and resolves or rejects on its own acknowledgement", async () => {
  const { client, socket } = await connected();
  const first = client.publish("/chat/in", [{ text: "hi" }, 2]);
  const second = client.publish("/chat/in", [{ text: "again" }]);
  const [one, two] = socket.frames("publish");
  assert.deepEqual(one.events, ['{"text":"hi"}', "2"]);
  assert.equal(one.channel, "/chat/in");
  assert.deepEqual(one.authorization, ENDPOINT.authorization());
  assert.notEqual(one.id, two.id);
  socket.deliver({ type: "publish_error", id: two.id, errors: [{ errorType: "ThrottlingException", message: "Slow down." }] });
  socket.deliver({ type: "publish_success", id: one.id, successful: [{ index: 0 }], failed: [] });
  assert.deepEqual((await first).successful, [{ index: 0 }]);
  await assert.rejects(second, { message: "Slow down.", errorType: "ThrottlingException" });
});

test("publish before the connection is ready is refused as ConnectionLost", async () => {
  const client = new EventsClient(ENDPOINT);
  await assert.rejects(client.publish("/c", [1]), { errorType: "ConnectionLost" });
  await client.connect();
  FakeWebSocket.opened[0].open();
  await assert.rejects(client.publish("/c", [1]), { errorType: "ConnectionLost" });
});

test("a subscribe_error is reported as an error state with the server's message", async () => {
  await connected();
  FakeWebSocket.opened[0].deliver({ type: "subscribe_error", id: "x", errors: [{ message: "Not allowed on /c" }] });
  FakeWebSocket.opened[0].deliver({ type: "subscribe_error", id: "y" });
  assert.deepEqual(states.slice(-2), [["error", { message: "Not allowed on /c" }], ["error", { message: "Subscription refused." }]]);
});

test("keep-alive: silence for connectionTimeoutMs closes the socket; any frame resets the watch", async () => {
  const { socket } = await connected();
  clock.tick(9000);
  socket.deliver({ type: "ka" });
  clock.tick(9000);
  assert.equal(socket.closedWith, null);
  clock.tick(1000);
  assert.equal(socket.closedWith, 4000);
});

test("a dropped connection fails pending publishes, backs off, reconnects and re-subscribes", async () => {
  Math.random = () => 0; // the lowest delay of each back-off step
  const { client, socket } = await connected();
  const got = [];
  client.subscribe("/c", (event) => got.push(event));
  const oldId = socket.frames("subscribe")[0].id;
  const pending = client.publish("/c", [1]);
  socket.drop(1006);
  await assert.rejects(pending, { errorType: "ConnectionLost" });
  assert.deepEqual(states.at(-1), ["reconnecting", { attempt: 1, delayMs: 250, code: 1006 }]);
  clock.tick(249);
  assert.equal(FakeWebSocket.opened.length, 1);
  clock.tick(1);
  await settle();
  assert.equal(FakeWebSocket.opened.length, 2);
  const again = FakeWebSocket.opened[1];
  // It failed again before the ack: the next step doubles (500..1000 ms).
  again.drop(1006);
  assert.deepEqual(states.at(-1), ["reconnecting", { attempt: 2, delayMs: 500, code: 1006 }]);
  clock.tick(500);
  await settle();
  const third = FakeWebSocket.opened[2];
  third.open();
  third.deliver({ type: "connection_ack", connectionTimeoutMs: 10000 });
  const [resubscribe] = third.frames("subscribe");
  assert.equal(resubscribe.channel, "/c");
  assert.notEqual(resubscribe.id, oldId);
  third.deliver({ type: "data", id: resubscribe.id, event: "7" });
  assert.deepEqual(got, [7]);
  // The ack resets the back-off.
  third.drop(1006);
  assert.deepEqual(states.at(-1), ["reconnecting", { attempt: 1, delayMs: 250, code: 1006 }]);
});

test("back-off is capped by maxBackoffMs and jittered within the upper half", async () => {
  Math.random = () => 0.999;
  const client = new EventsClient(ENDPOINT, { onState: (state, detail) => states.push([state, detail]), maxBackoffMs: 2000 });
  await client.connect();
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    FakeWebSocket.opened.at(-1).drop(1011);
    clock.tick(clock.pending()[0]);
    await settle();
  }
  const delays = states.filter(([s, d]) => s === "reconnecting" && d.delayMs).map(([, d]) => d.delayMs);
  assert.deepEqual(delays, [500, 1000, 1999, 1999, 1999]);
});

test("a close code the endpoint marks final stops the client; close() is final too", async () => {
  const { client, socket } = await connected();
  socket.drop(4401);
  assert.deepEqual(states.at(-1), ["closed", { code: 4401 }]);
  assert.deepEqual(clock.pending(), []);
  const second = await connected();
  second.client.close();
  assert.equal(second.socket.closedWith, 1000);
  second.socket.drop(1000);
  assert.deepEqual(states.at(-1), ["closed", { code: 1000 }]);
  assert.deepEqual(clock.pending(), []);
  assert.equal(client.ready, false);
});

test("prepare() refusing for good closes with its message; a passing failure retries", async () => {
  let failure = Object.assign(new Error("Sign in again."), { permanent: true });
  const endpoint = { ...ENDPOINT, prepare: async () => { if (failure) throw failure; } };
  const client = new EventsClient(endpoint, { onState: (state, detail) => states.push([state, detail]) });
  await client.connect();
  assert.deepEqual(states.at(-1), ["closed", { code: 4401, message: "Sign in again." }]);
  assert.equal(FakeWebSocket.opened.length, 0);
  failure = new Error("Network down.");
  await client.connect();
  assert.equal(states.at(-1)[0], "reconnecting");
  failure = null;
  clock.tick(clock.pending()[0]);
  await settle();
  assert.equal(FakeWebSocket.opened.length, 1);
});

test("reconnect() opens a new connection at once and ignores the old socket's close", async () => {
  const { client, socket } = await connected();
  client.subscribe("/c", () => {});
  const pending = client.publish("/c", [1]);
  client.reconnect();
  await assert.rejects(pending, { errorType: "ConnectionLost" });
  assert.equal(socket.closedWith, 1000);
  await settle();
  assert.equal(FakeWebSocket.opened.length, 2);
  socket.drop(1000); // the old socket's late close event
  assert.notEqual(states.at(-1)[0], "closed");
  assert.deepEqual(clock.pending(), []);
  const fresh = FakeWebSocket.opened[1];
  fresh.open();
  fresh.deliver({ type: "connection_ack" });
  assert.equal(fresh.frames("subscribe").length, 1);
});
