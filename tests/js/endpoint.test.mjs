// static/chat/endpoint.js: where the page connects, how it authorises, and the ID token's
// life cycle (fetch, reuse, renewal, and which failures are final).
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { installClock } from "./clock.mjs";
import { importStatic } from "./load.mjs";

const { IdTokenSource, appsyncEndpoint, base64Url, localEndpoint } = await importStatic("chat/endpoint.js");

let clock;
let requests;
let responses; // what the token URL answers next, in order
beforeEach(() => {
  clock = installClock();
  requests = [];
  responses = [];
  globalThis.fetch = async (url, options) => {
    requests.push({ url, options });
    const next = responses.shift();
    if (next instanceof Error) throw next;
    return {
      ok: next.status >= 200 && next.status < 300,
      status: next.status,
      json: async () => { if (typeof next.body === "string") throw new SyntaxError("not JSON"); return next.body; },
    };
  };
});
afterEach(() => { clock.uninstall(); delete globalThis.location; });

const nowSeconds = () => Date.now() / 1000;

test("base64Url is URL-safe, unpadded and carries UTF-8", () => {
  const text = JSON.stringify({ host: "h", note: "한국어 ??>>" });
  const encoded = base64Url(text);
  assert.match(encoded, /^[A-Za-z0-9_-]+$/);
  assert.equal(Buffer.from(encoded, "base64url").toString("utf8"), text);
  assert.equal(base64Url("a"), "YQ");
});

test("the local endpoint follows the page's origin and scheme", () => {
  globalThis.location = { protocol: "https:", host: "gw.example:8443" };
  const endpoint = localEndpoint();
  assert.equal(endpoint.realtimeUrl, "wss://gw.example:8443/event/realtime");
  assert.deepEqual(endpoint.authorization(), { host: "gw.example:8443" });
  assert.deepEqual(endpoint.noReconnectCodes, [4401, 4429]);
  globalThis.location = { protocol: "http:", host: "127.0.0.1:8000" };
  assert.equal(localEndpoint().realtimeUrl, "ws://127.0.0.1:8000/event/realtime");
});

test("the AppSync endpoint signs with the current token for the HTTP host", async () => {
  const tokens = new IdTokenSource("/chat/token");
  const endpoint = appsyncEndpoint(
    { httpUrl: "https://abc.appsync-api.eu-west-1.amazonaws.com/event", realtimeUrl: "wss://abc.appsync-realtime-api.eu-west-1.amazonaws.com/event/realtime" },
    tokens,
  );
  responses.push({ status: 200, body: { idToken: "jwt-1", expiresAt: nowSeconds() + 3600 } });
  await endpoint.prepare();
  assert.deepEqual(endpoint.authorization(), { host: "abc.appsync-api.eu-west-1.amazonaws.com", Authorization: "jwt-1" });
  assert.deepEqual(endpoint.noReconnectCodes, []);
  assert.equal(requests[0].url, "/chat/token");
  assert.equal(requests[0].options.credentials, "same-origin");
});

test("fresh() reuses a token with time left and fetches one about to lapse", async () => {
  const tokens = new IdTokenSource("/t");
  responses.push({ status: 200, body: { idToken: "a", expiresAt: nowSeconds() + 60 } });
  assert.equal(await tokens.fresh(), "a");
  assert.equal(await tokens.fresh(), "a");
  assert.equal(requests.length, 1);
  tokens.expiresAt = nowSeconds() + 4;
  responses.push({ status: 200, body: { idToken: "b", expiresAt: nowSeconds() + 60 } });
  assert.equal(await tokens.fresh(), "b");
  assert.equal(requests.length, 2);
});

test("renewal is scheduled a quarter of the lifetime, at most a minute, before expiry", async () => {
  const renewed = [];
  const tokens = new IdTokenSource("/t", { onRenewed: () => renewed.push(tokens.current()) });
  responses.push({ status: 200, body: { idToken: "a", expiresAt: nowSeconds() + 3600 } });
  await tokens.fetch();
  const [hourly] = clock.pending();
  assert.ok(Math.abs(hourly - 3540000) < 50, hourly);
  responses.push({ status: 200, body: { idToken: "b", expiresAt: nowSeconds() + 100 } });
  clock.tick(hourly);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(renewed, ["b"]);
  const [short] = clock.pending();
  assert.ok(Math.abs(short - 75000) < 50, short);
});

test("a failed renewal retries in 5 s unless the failure is final", async () => {
  const tokens = new IdTokenSource("/t");
  responses.push({ status: 503, body: { errors: [{ message: "Cognito is unavailable." }] } });
  await tokens.renew();
  assert.deepEqual(clock.pending(), [5000]);
  responses.push({ status: 403, body: { errors: [{ message: "Sign in again." }] } });
  clock.tick(5000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(clock.pending(), []);
  assert.equal(requests.length, 2);
});

test("token errors say whether they are final, with the server's message when there is one", async () => {
  const tokens = new IdTokenSource("/t");
  responses.push({ status: 401, body: { errors: [{ message: "Your session has ended." }] } });
  await assert.rejects(tokens.fetch(), { message: "Your session has ended.", permanent: true, errorType: "Unauthorized" });
  responses.push({ status: 403, body: "<html>proxy</html>" });
  await assert.rejects(tokens.fetch(), { message: "Could not get a sign-in token.", permanent: true });
  responses.push({ status: 503, body: {} });
  await assert.rejects(tokens.fetch(), { permanent: false });
  responses.push(new TypeError("fetch failed"));
  await assert.rejects(tokens.fetch(), { message: "The sign-in service cannot be reached. Retrying…", permanent: false });
  assert.equal(tokens.current(), "");
});
