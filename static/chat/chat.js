// The chat page: conversations (kept in localStorage), the model picker, streaming answers
// rendered as safe Markdown, the token usage bars and inline errors. It speaks AppSync
// Events through EventsClient; endpoint.js is the one place that says where and how (Django's
// own WebSocket, or the deployed AppSync Events API with the user's Cognito ID token).
import { IdTokenSource, appsyncEndpoint, localEndpoint } from "./endpoint.js";
import { EventsClient } from "./events-client.js";
import { renderMarkdown } from "./markdown.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
// Strings go through Django's JavaScript catalogue (loaded by the page before this module);
// without it (a test page, a failed load) the English source text is shown.
const gettext = window.gettext || ((text) => text);
const interpolate = window.interpolate || ((text, params) => text.replace(/%\((\w+)\)s/g, (_, name) => String(params[name])));
const _ = (text, params) => (params ? interpolate(gettext(text), params, true) : gettext(text));
const LOCALE = document.documentElement.lang || undefined;
const number = (value) => Number(value).toLocaleString(LOCALE);
const STORE_KEY = `gateway.chat.conversations.${config.sub}`;
const MODEL_KEY = `gateway.chat.model.${config.sub}`;
const PRIVATE_KEY = `gateway.chat.private.${config.sub}`;
const MAX_CONVERSATIONS = 50;
const $ = (id) => document.getElementById(id);

const ui = {
  list: $("conversation-list"), newButton: $("new-conversation"), model: $("model"),
  privateSwitch: $("private"), log: $("messages"), form: $("composer"), input: $("prompt"),
  send: $("send"), stop: $("stop"), status: $("connection-status"), notice: $("notice"),
  usage: { "10m": $("usage-10m"), month: $("usage-month") }, sidebarToggle: $("toggle-sidebar"),
  sidebar: $("sidebar"),
};

const state = {
  me: null,
  usage: null, // the windows as the store last reported them
  conversations: loadConversations(),
  currentId: null,
  inFlight: null, // {conversationId, message, node, text, timer}
  reconnectWhenIdle: false, // a renewed token waits for the turn in flight to end
};

// --- storage ----------------------------------------------------------------------------

function loadConversations() {
  try {
    const stored = JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
    return Array.isArray(stored) ? stored : [];
  } catch { return []; }
}

function saveConversations() {
  state.conversations.sort((a, b) => b.updatedAt - a.updatedAt);
  state.conversations = state.conversations.slice(0, MAX_CONVERSATIONS);
  try { localStorage.setItem(STORE_KEY, JSON.stringify(state.conversations)); } catch { /* full: keep in memory */ }
}

function newConversationId() {
  return "c-" + (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));
}

function current() {
  return state.conversations.find((c) => c.id === state.currentId) || null;
}

// --- rendering --------------------------------------------------------------------------

function renderConversationList() {
  const items = state.conversations.map((conversation) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation" + (conversation.id === state.currentId ? " active" : "");
    button.textContent = conversation.title || _("New conversation");
    button.title = new Date(conversation.updatedAt).toLocaleString();
    button.addEventListener("click", () => openConversation(conversation.id));
    li.append(button);
    return li;
  });
  ui.list.replaceChildren(...items);
}

function messageNode(message) {
  const wrapper = document.createElement("article");
  wrapper.className = `message ${message.role}`;
  const body = document.createElement("div");
  body.className = "body";
  if (message.role === "assistant") renderMarkdown(body, message.text || "");
  else body.textContent = message.text;
  wrapper.append(body);
  if (message.note) wrapper.append(noteNode(message.note));
  if (message.error) wrapper.append(errorNode(message.error));
  if (message.stopped) wrapper.append(noteNode(_("Stopped. Tokens streamed so far were counted.")));
  return wrapper;
}

function errorNode(text) {
  const node = document.createElement("p");
  node.className = "inline-error";
  node.setAttribute("role", "alert");
  node.textContent = text;
  return node;
}

function noteNode(text) {
  const node = document.createElement("p");
  node.className = "note";
  node.textContent = text;
  return node;
}

function renderMessages() {
  const conversation = current();
  const nodes = (conversation ? conversation.messages : []).map(messageNode);
  if (!nodes.length) {
    nodes.push(noteNode(state.me && !state.me.models.length
      ? _("No models are enabled for your account yet. Ask a gateway admin for access.")
      : _("Ask anything. Answers stream in as the model writes them.")));
  }
  ui.log.replaceChildren(...nodes);
  ui.log.scrollTop = ui.log.scrollHeight;
}

function openConversation(id) {
  state.currentId = id;
  const conversation = current();
  if (conversation && conversation.modelId && hasModel(conversation.modelId)) ui.model.value = conversation.modelId;
  renderConversationList();
  renderMessages();
  ui.sidebar.classList.remove("open");
  ui.input.focus();
}

function startNewConversation() {
  state.currentId = null;
  renderConversationList();
  renderMessages();
  ui.sidebar.classList.remove("open");
  ui.input.focus();
}

// --- models -----------------------------------------------------------------------------

function hasModel(id) {
  return Boolean(state.me && state.me.models.some((m) => m.id === id));
}

function renderModels(models) {
  const byProvider = new Map();
  models.forEach((model) => {
    if (!byProvider.has(model.provider)) byProvider.set(model.provider, []);
    byProvider.get(model.provider).push(model);
  });
  const groups = [...byProvider.entries()].map(([provider, entries]) => {
    const group = document.createElement("optgroup");
    group.label = provider;
    entries.forEach((model) => {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = model.name;
      group.append(option);
    });
    return group;
  });
  if (!groups.length) {
    const option = document.createElement("option");
    option.textContent = _("No models enabled");
    option.value = "";
    ui.model.replaceChildren(option);
    ui.model.disabled = true;
    return;
  }
  ui.model.replaceChildren(...groups);
  ui.model.disabled = false;
  const remembered = localStorage.getItem(MODEL_KEY);
  if (remembered && hasModel(remembered)) ui.model.value = remembered;
}

// --- usage bars -------------------------------------------------------------------------
// `used` counts outstanding reservations (the store adds a reservation to every counter), and
// `reserved` says how much of it is held for answers still running: while a turn runs its own
// reservation is shown as reserved, and the answer's true usage replaces it at the end.

function formatReset(iso, window) {
  if (!iso) return "";
  const date = new Date(iso);
  const options = window === "10m" ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return date.toLocaleString(LOCALE, options);
}

function withReservation(tokenUsage, reservation) {
  const held = {};
  for (const [window, usage] of Object.entries(tokenUsage || {})) {
    held[window] = { ...usage, used: (usage.used || 0) + reservation.totalTokens, reserved: (usage.reserved || 0) + reservation.totalTokens };
  }
  return held;
}

function renderUsage(tokenUsage, { settled = true } = {}) {
  if (!tokenUsage) return;
  if (settled) state.usage = tokenUsage;
  for (const [window, node] of Object.entries(ui.usage)) {
    const usage = tokenUsage[window];
    if (!usage) continue;
    const used = usage.used || 0;
    const reserved = Math.min(usage.reserved || 0, used);
    const limit = usage.limit;
    const share = (tokens) => (limit ? Math.min(100, (tokens / limit) * 100) : 0);
    const percent = share(used);
    node.querySelector(".fill").style.width = `${limit === 0 ? 100 : share(used - reserved)}%`;
    node.querySelector(".fill-reserved").style.width = `${limit === 0 ? 0 : Math.min(share(reserved), 100 - share(used - reserved))}%`;
    node.dataset.level = limit === 0 || percent >= 90 ? "bad" : percent >= 75 ? "warn" : "ok";
    const figures = limit == null
      ? _("%(used)s tokens (no limit)", { used: number(used) })
      : _("%(used)s / %(limit)s tokens", { used: number(used), limit: number(limit) });
    node.querySelector(".figures").textContent = reserved
      ? `${figures} · ${_("%(reserved)s reserved for answers in progress", { reserved: number(reserved) })}`
      : figures;
    node.querySelector(".reset").textContent = _("resets %(when)s", { when: formatReset(usage.resetsAt, window) });
    node.querySelector(".track").setAttribute("aria-valuenow", String(Math.round(percent)));
  }
}

// --- errors -----------------------------------------------------------------------------
// The gateway sends a refusal's code and figures; the page says it in the user's language.
// Its `used` and `limit` come from the same store read as the bars drawn with it.

function windowName(window) {
  return window === "10m" ? _("10-minute") : window === "month" ? _("monthly") : window;
}

function money(usd) {
  return new Intl.NumberFormat(LOCALE, { style: "currency", currency: "USD", maximumFractionDigits: 4 }).format(usd);
}

function describeBudget(error, which, when) {
  if (error.usedUsd == null) {
    return _("This question may cost up to %(needed)s, more than your whole %(window)s budget of %(budget)s. Ask for a shorter answer or pick a cheaper model.",
      { needed: money(error.neededUsd), window: which, budget: money(error.budgetUsd) });
  }
  return _("Your %(window)s budget of %(budget)s is spent: %(used)s used, and this question may cost up to %(needed)s. Pick a cheaper model, ask for a shorter answer, or wait until %(when)s, when the budget resets.",
    { window: which, budget: money(error.budgetUsd), used: money(error.usedUsd), needed: money(error.neededUsd), when });
}

function describeQuota(error) {
  const which = windowName(error.window);
  const when = error.resetsAt ? new Date(error.resetsAt).toLocaleString(LOCALE) : _("soon");
  if (error.counter === "cost") return describeBudget(error, which, when);
  const limit = number(error.limit);
  if (error.used == null) {
    return _("This question needs up to %(needed)s tokens, more than your whole %(window)s quota of %(limit)s. Start a new conversation with a shorter question, or ask a gateway admin for a higher limit.",
      { needed: number(error.needed ?? error.limit), window: which, limit });
  }
  const parts = [];
  if (error.inputTokens != null && error.maxTokens != null) {
    parts.push(_("Not sent: this question reserves %(needed)s tokens of your %(window)s quota, about %(input)s for the question and the conversation so far plus up to %(max)s for the answer.",
      { needed: number(error.needed), window: which, input: number(error.inputTokens), max: number(error.maxTokens) }));
  }
  parts.push(error.reserved
    ? _("%(used)s of %(limit)s tokens are used, %(reserved)s of them held for answers still running.", { used: number(error.used), limit, reserved: number(error.reserved) })
    : _("%(used)s of %(limit)s tokens are used.", { used: number(error.used), limit }));
  parts.push(_("Start a new conversation (the whole conversation is sent with each question), try a shorter question, or wait until %(when)s, when the %(window)s quota resets.",
    { when, window: which }));
  return parts.join(" ");
}

function describeError(error) {
  switch (error.type) {
    case "QuotaExceeded":
      return describeQuota(error);
    case "ModelNotAllowed":
      return _("You may not use this model. Pick another model from the list, or ask a gateway admin for access.");
    case "ModelThrottled":
      return _("The model is busy right now (throttled). Wait a few seconds and send again.");
    case "ModelUnavailable":
      return _("The model is unavailable: %(reason)s", { reason: error.message });
    case "ThrottlingException":
      return _("You are sending messages too quickly. Wait a moment and try again.");
    case "ConnectionLost":
      return _("The connection was lost before the answer finished. It reconnects by itself; send again once it is back.");
    default:
      return error.message || _("Something went wrong.");
  }
}

function showNotice(text, level = "info") {
  ui.notice.textContent = text;
  ui.notice.dataset.level = level;
  ui.notice.hidden = !text;
}

// --- a turn -----------------------------------------------------------------------------

function historyFor(conversation) {
  // Only answered exchanges go back to the model: the API wants user/assistant alternating.
  const history = [];
  let question = null;
  for (const message of conversation.messages) {
    if (message.role === "user") question = message;
    else if (message.text && question) {
      history.push({ role: "user", content: [{ text: question.text }] }, { role: "assistant", content: [{ text: message.text }] });
      question = null;
    }
  }
  return history;
}

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.input.disabled = false;
}

async function send() {
  const text = ui.input.value.trim();
  const modelId = ui.model.value;
  if (!text || state.inFlight || !modelId || !client) return;
  let conversation = current();
  if (!conversation) {
    conversation = { id: newConversationId(), title: text.slice(0, 60), modelId, messages: [], updatedAt: Date.now() };
    state.conversations.unshift(conversation);
    state.currentId = conversation.id;
  }
  const request = {
    modelId,
    conversationId: conversation.id,
    messages: [...historyFor(conversation), { role: "user", content: [{ text }] }],
  };
  if (ui.privateSwitch.checked) request.private = true;
  conversation.messages.push({ role: "user", text });
  const answer = { role: "assistant", text: "" };
  conversation.messages.push(answer);
  conversation.modelId = modelId;
  conversation.updatedAt = Date.now();
  saveConversations();
  renderConversationList();
  renderMessages();
  ui.input.value = "";
  const node = ui.log.lastElementChild;
  node.classList.add("streaming");
  state.inFlight = { conversationId: conversation.id, message: answer, node };
  setBusy(true);
  try {
    await client.publish(config.inbound, [request]);
  } catch (error) {
    finishTurn({ error: { type: error.errorType, message: error.message } });
  }
}

async function stop() {
  if (!state.inFlight) return;
  try {
    await client.publish(config.inbound, [{ action: "cancel", conversationId: state.inFlight.conversationId }]);
    state.inFlight.message.stopped = true;
  } catch (error) {
    showNotice(describeError({ type: error.errorType, message: error.message }), "bad");
  }
}

function paintAnswer() {
  const turn = state.inFlight;
  if (!turn) return;
  turn.paintScheduled = false;
  renderMarkdown(turn.node.querySelector(".body"), turn.message.text);
  ui.log.scrollTop = ui.log.scrollHeight;
}

function finishTurn({ error = null } = {}) {
  const turn = state.inFlight;
  if (!turn) return;
  state.inFlight = null;
  if (error) turn.message.error = describeError(error);
  const conversation = state.conversations.find((c) => c.id === turn.conversationId);
  if (conversation) conversation.updatedAt = Date.now();
  saveConversations();
  setBusy(false);
  if (state.currentId === turn.conversationId) renderMessages();
  ui.input.focus();
  if (state.reconnectWhenIdle) {
    state.reconnectWhenIdle = false;
    client.reconnect();
  }
}

function onOutboundEvent(event) {
  if (event.metadata) renderUsage(event.metadata.tokenUsage);
  if (event.tokenUsage) renderUsage(event.tokenUsage);
  const turn = state.inFlight;
  if (!turn || event.conversationId !== turn.conversationId) return;
  if (event.messageStart && event.reservation) {
    const { reservation } = event;
    renderUsage(withReservation(state.usage, reservation), { settled: false });
    if (reservation.requestedMaxTokens > reservation.maxTokens) {
      turn.message.note = _("Your quota has room for a shorter answer only: this one may be at most %(max)s tokens long instead of %(requested)s.",
        { max: number(reservation.maxTokens), requested: number(reservation.requestedMaxTokens) });
      turn.node.append(noteNode(turn.message.note));
    }
  } else if (event.contentBlockDelta) {
    turn.message.text += event.contentBlockDelta.delta.text || "";
    if (!turn.paintScheduled) {
      turn.paintScheduled = true;
      requestAnimationFrame(paintAnswer);
    }
  } else if (event.messageStop) {
    if (event.messageStop.stopReason === "cancelled") turn.message.stopped = true;
    if (event.messageStop.stopReason === "max_tokens") turn.message.error = _("The answer was cut at the maximum length.");
    // The notice itself arrives as text; this marks the message so it reads as a refusal.
    if (event.messageStop.stopReason === "guardrail_intervened") turn.message.error = _("Blocked by the content policy.");
  } else if (event.metadata) {
    finishTurn();
  } else if (event.error) {
    finishTurn({ error: event.error });
  }
}

// --- connection -------------------------------------------------------------------------

function onConnectionState(status, detail) {
  ui.status.dataset.state = status;
  if (status === "open") {
    ui.status.textContent = _("Connected");
    showNotice("");
  } else if (status === "connecting") {
    ui.status.textContent = _("Connecting…");
  } else if (status === "reconnecting") {
    ui.status.textContent = _("Reconnecting…");
    if (detail.delayMs) showNotice(_("Connection lost. Reconnecting in %(seconds)s s…", { seconds: Math.ceil(detail.delayMs / 1000) }), "warn");
    if (state.inFlight) finishTurn({ error: { type: "ConnectionLost" } });
  } else if (status === "closed") {
    ui.status.textContent = _("Disconnected");
    if (state.inFlight) finishTurn({ error: { type: "ConnectionLost" } });
    if (detail.message) showNotice(detail.message, "bad");
    else if (detail.code === 4401) showNotice(_("Your session has ended. Sign in again to keep chatting."), "bad");
    else if (detail.code === 4429) showNotice(_("The server closed the connection after too many bad requests. Reload the page."), "bad");
  } else if (status === "error") {
    showNotice(detail.message, "bad");
  }
}

// A renewed token: reconnect with it now, or once the answer being streamed has arrived, so
// the connection never outlives the token it was opened with (and no turn is cut).
function onTokenRenewed() {
  if (state.inFlight) state.reconnectWhenIdle = true;
  else client.reconnect();
}

function chatEndpoint() {
  if (config.transport === "appsync") {
    return appsyncEndpoint(config, new IdTokenSource(config.tokenUrl, { onRenewed: onTokenRenewed }));
  }
  return localEndpoint();
}

const client = config.transport === "unavailable" ? null : new EventsClient(chatEndpoint(), { onState: onConnectionState });

async function loadMe() {
  const response = await fetch(config.meUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) { showNotice(_("Your session has ended. Sign in again."), "bad"); return; }
  state.me = await response.json();
  renderModels(state.me.models);
  renderUsage(state.me.usage);
  renderMessages();
}

// --- wiring -----------------------------------------------------------------------------

ui.form.addEventListener("submit", (event) => { event.preventDefault(); send(); });
ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
});
ui.stop.addEventListener("click", stop);
ui.newButton.addEventListener("click", startNewConversation);
ui.model.addEventListener("change", () => localStorage.setItem(MODEL_KEY, ui.model.value));
ui.privateSwitch.checked = localStorage.getItem(PRIVATE_KEY) === "1";
ui.privateSwitch.addEventListener("change", () => localStorage.setItem(PRIVATE_KEY, ui.privateSwitch.checked ? "1" : "0"));
ui.sidebarToggle.addEventListener("click", () => ui.sidebar.classList.toggle("open"));

if (client) {
  client.subscribe(config.outbound, onOutboundEvent);
  client.connect();
} else {
  // No way to reach the chat API for this account (see chat/selectors.py transport_for).
  ui.status.dataset.state = "closed";
  ui.status.textContent = _("Not connected");
  ui.send.disabled = true;
  showNotice(config.message, "bad");
}
renderConversationList();
renderMessages();
loadMe().catch(() => showNotice(_("Could not load your models and usage. Reload the page to try again."), "bad"));
