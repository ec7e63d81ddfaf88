// A small AWS AppSync Events WebSocket client: connection_init/ack, keep-alive watch,
// subscribe/unsubscribe, publish with acknowledgement, and reconnect with exponential
// back-off that re-subscribes every live subscription.
import { base64Url } from "./endpoint.js";

const SUBPROTOCOL = "aws-appsync-event-ws";

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return "id-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
}

export class EventsClient {
  // endpoint: {realtimeUrl, authorization(), prepare()?, noReconnectCodes}; onState(state,
  // detail) with state one of "connecting" | "open" | "reconnecting" | "closed" | "error".
  constructor(endpoint, { onState = () => {}, maxBackoffMs = 30000 } = {}) {
    this.endpoint = endpoint;
    this.onState = onState;
    this.maxBackoffMs = maxBackoffMs;
    this.subscriptions = new Map(); // our key -> {channel, handler, wireId}
    this.pending = new Map(); // publish id -> {resolve, reject}
    this.attempt = 0;
    this.socket = null;
    this.ready = false;
    this.stopped = false;
    this.readyWaiters = [];
    this.noReconnectCodes = new Set(endpoint.noReconnectCodes || []);
  }

  async connect() {
    this.stopped = false;
    this.onState(this.attempt ? "reconnecting" : "connecting", { attempt: this.attempt });
    if (this.endpoint.prepare) {
      // The credentials the connection is opened with (a fresh token for AppSync).
      try {
        await this.endpoint.prepare();
      } catch (error) {
        if (error.permanent) this.onState("closed", { code: 4401, message: error.message });
        else this._retry(0);
        return;
      }
      if (this.stopped) return;
    }
    const header = base64Url(JSON.stringify(this.endpoint.authorization()));
    const socket = new WebSocket(this.endpoint.realtimeUrl, [SUBPROTOCOL, `header-${header}`]);
    this.socket = socket;
    socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "connection_init" })));
    socket.addEventListener("message", (message) => this._receive(message.data));
    socket.addEventListener("close", (event) => this._closed(socket, event));
  }

  // Opens a new connection at once (e.g. with a renewed token), keeping the subscriptions.
  reconnect() {
    const old = this.socket;
    this.socket = null; // its close event is no longer ours
    this.ready = false;
    clearTimeout(this.kaTimer);
    clearTimeout(this.retryTimer);
    this._failPending();
    if (old) old.close(1000);
    this.attempt = 0;
    this.connect();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.kaTimer);
    if (this.socket) this.socket.close(1000);
  }

  // Resolves once connected (immediately when already connected).
  whenReady() {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  subscribe(channel, handler) {
    const key = newId();
    this.subscriptions.set(key, { channel, handler, wireId: null });
    if (this.ready) this._sendSubscribe(key);
    return () => this.unsubscribe(key);
  }

  unsubscribe(key) {
    const sub = this.subscriptions.get(key);
    this.subscriptions.delete(key);
    if (sub && sub.wireId && this.ready) this._send({ type: "unsubscribe", id: sub.wireId });
  }

  // Publishes up to 5 events (any JSON values); resolves with {successful, failed}, rejects
  // with an Error whose `errorType` is AppSync's (ThrottlingException, ...).
  publish(channel, events) {
    if (!this.ready) return Promise.reject(Object.assign(new Error("Not connected."), { errorType: "ConnectionLost" }));
    const id = newId();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this._send({
        type: "publish", id, channel,
        events: events.map((e) => JSON.stringify(e)),
        authorization: this.endpoint.authorization(),
      });
    });
  }

  _sendSubscribe(key) {
    const sub = this.subscriptions.get(key);
    sub.wireId = newId();
    this._send({ type: "subscribe", id: sub.wireId, channel: sub.channel, authorization: this.endpoint.authorization() });
  }

  _send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  _receive(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    this._watchKeepAlive();
    switch (frame.type) {
      case "connection_ack":
        this.timeoutMs = frame.connectionTimeoutMs || 300000;
        this.ready = true;
        this.attempt = 0;
        for (const key of this.subscriptions.keys()) this._sendSubscribe(key);
        this.onState("open", {});
        this.readyWaiters.splice(0).forEach((resolve) => resolve());
        break;
      case "data":
        for (const sub of this.subscriptions.values()) {
          if (sub.wireId === frame.id) {
            let event;
            try { event = JSON.parse(frame.event); } catch { continue; }
            sub.handler(event);
          }
        }
        break;
      case "publish_success":
      case "publish_error": {
        const waiter = this.pending.get(frame.id);
        if (!waiter) break;
        this.pending.delete(frame.id);
        if (frame.type === "publish_success") waiter.resolve(frame);
        else {
          const first = (frame.errors || [])[0] || {};
          waiter.reject(Object.assign(new Error(first.message || "Publish refused."), { errorType: first.errorType }));
        }
        break;
      }
      case "subscribe_error":
        this.onState("error", { message: ((frame.errors || [])[0] || {}).message || "Subscription refused." });
        break;
      default:
        break; // ka, subscribe_success, unsubscribe_success, error
    }
  }

  _watchKeepAlive() {
    clearTimeout(this.kaTimer);
    if (!this.timeoutMs) return;
    // AppSync's rule: no message for connectionTimeoutMs means the connection is dead.
    this.kaTimer = setTimeout(() => this.socket && this.socket.close(4000), this.timeoutMs);
  }

  _closed(socket, event) {
    if (socket !== this.socket) return;
    this.ready = false;
    clearTimeout(this.kaTimer);
    this._failPending();
    if (this.stopped || this.noReconnectCodes.has(event.code)) {
      this.onState("closed", { code: event.code });
      return;
    }
    this._retry(event.code);
  }

  _failPending() {
    for (const waiter of this.pending.values()) {
      waiter.reject(Object.assign(new Error("The connection was lost."), { errorType: "ConnectionLost" }));
    }
    this.pending.clear();
  }

  _retry(code) {
    // Exponential back-off with full jitter, so many clients do not reconnect in lockstep.
    const ceiling = Math.min(this.maxBackoffMs, 500 * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    this.attempt += 1;
    this.onState("reconnecting", { attempt: this.attempt, delayMs: delay, code });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
