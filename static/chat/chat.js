// The chat page: conversations (kept on the server by conversations.js), the model picker, streaming answers
// rendered as safe Markdown, the token usage bars and inline errors. It speaks AppSync
// Events through EventsClient; endpoint.js is the one place that says where and how (Django's
// own WebSocket, or the deployed AppSync Events API with the user's Cognito ID token).
import { ConversationHistory } from "./conversations.js";
import { IdTokenSource, appsyncEndpoint, localEndpoint } from "./endpoint.js";
import { EventsClient } from "./events-client.js";
import { renderMarkdown } from "./markdown.js";
import {
  addCodeCopyButtons, answerFooter, autoGrow, conversationDrawer, editQuestion, messageActions, sourceBadge,
} from "./actions.js";
import { estimateTokens } from "./tokens.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
// Strings go through Django's JavaScript catalogue (loaded by the page before this module);
// without it (a test page, a failed load) the English source text is shown.
const gettext = window.gettext || ((text) => text);
const interpolate = window.interpolate || ((text, params) => text.replace(/%\((\w+)\)s/g, (_, name) => String(params[name])));
const _ = (text, params) => (params ? interpolate(gettext(text), params, true) : gettext(text));
const LOCALE = document.documentElement.lang || undefined;
const number = (value) => Number(value).toLocaleString(LOCALE);
const MODEL_KEY = `gateway.chat.model.${config.sub}`;
const PRIVATE_KEY = `gateway.chat.private.${config.sub}`;
const MAX_TOKENS_KEY = `gateway.chat.maxTokens.${config.sub}`;
const $ = (id) => document.getElementById(id);

const ui = {
  list: $("conversation-list"), newButton: $("new-conversation"), model: $("model"),
  privateSwitch: $("private"), log: $("messages"), form: $("composer"), input: $("prompt"),
  send: $("send"), stop: $("stop"), status: $("connection-status"), notice: $("notice"),
  // One bar per window kind the server names in the page config (dataplane/windows.py).
  usage: Object.fromEntries(Object.keys(config.windows).map((kind) => [kind, $(`usage-${kind}`)])), sidebarToggle: $("toggle-sidebar"),
  sidebar: $("sidebar"), maxTokens: $("max-tokens"), sidebarClose: $("close-sidebar"), backdrop: $("drawer-backdrop"),
  search: $("conversation-search"), more: $("conversation-more"), exportAll: $("export-all"),
};

const state = {
  me: null,
  usage: null, // the windows as the store last reported them
  currentId: null,
  inFlight: null, // {conversationId, question, message, node, stopReason}
  reconnectWhenIdle: false, // a renewed token waits for the turn in flight to end
  wasConnected: false, // a later "open" is a reconnection
};

// --- storage ---------------------------------------------------------------------------
// Conversations live on the server (conversations.js); this page holds the ones it shows.

const chatHistory = new ConversationHistory({
  config: config.history,
  elements: { list: ui.list, search: ui.search, more: ui.more, exportAll: ui.exportAll },
  currentId: () => state.currentId,
  onOpen: (id) => (id ? openConversation(id) : startNewConversation()),
  onNotice: (text) => showNotice(text, "bad"),
});

function current() {
  return chatHistory.find(state.currentId);
}

// --- rendering --------------------------------------------------------------------------

function renderConversationList() {
  chatHistory.render();
}

function messageNode(message, index, messages) {
  const wrapper = document.createElement("article");
  wrapper.className = `message ${message.role}`;
  const body = document.createElement("div");
  body.className = "body";
  const badge = message.role === "assistant" ? sourceBadge(message.meta) : null;
  if (badge) {
    wrapper.classList.add(message.meta.cache === "hit" ? "from-cache" : "from-prepared");
    wrapper.append(badge);
  }
  if (message.role === "assistant") {
    renderMarkdown(body, message.text || "");
    addCodeCopyButtons(body);
  } else body.textContent = message.text;
  wrapper.append(body);
  if (message.note) wrapper.append(noteNode(message.note));
  if (message.error) wrapper.append(errorNode(message.error));
  if (message.stopped) wrapper.append(noteNode(_("Stopped. Tokens streamed so far were counted.")));
  if (message.meta) wrapper.append(answerFooter(message.meta, modelName(message.meta.modelId)));
  const actions = messageActionsFor(message, index, messages, body);
  if (message.text || actions.onRegenerate) wrapper.append(messageActions(message, actions));
  return wrapper;
}

// Edit every question, regenerate the last answer; neither while an answer is streaming.
function messageActionsFor(message, index, messages, body) {
  if (state.inFlight || !client) return {};
  if (message.role === "user") {
    return {
      onEdit: () => editQuestion(body, message.text, {
        onSend: (text) => resendFrom(index, text),
        onCancel: () => { body.textContent = message.text; },
      }),
    };
  }
  // A prepared answer is the organisation's text: asking again returns the same text.
  const last = index === messages.length - 1 && !(message.meta && message.meta.cache === "prepared");
  if (!last) return {};
  const fits = message.fitsMaxTokens;
  return { onRegenerate: () => regenerate(), onSendShorter: fits ? () => regenerate({ maxTokens: fits }) : null, fits };
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
  const nodes = (conversation && conversation.messages ? conversation.messages : []).map(messageNode);
  if (!nodes.length) {
    nodes.push(noteNode(state.me && !state.me.models.length
      ? _("No models are enabled for your account yet. Ask a gateway admin for access.")
      : _("Ask anything. Answers stream in as the model writes them.")));
  }
  ui.log.replaceChildren(...nodes);
  ui.log.scrollTop = ui.log.scrollHeight;
}

async function openConversation(id) {
  if (state.currentId !== id && !(await chatHistory.open(id))) return;
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

function modelName(id) {
  const model = state.me && state.me.models.find((m) => m.id === id);
  return model ? model.name : id;
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

function formatReset(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  // A reset later today needs only its time; a later one (the month's) its date too.
  const today = date.toDateString() === new Date().toDateString();
  const options = today ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return date.toLocaleString(LOCALE, options);
}

// The server's usage levels (dataplane.windows.usage_level): the same thresholds as the admin's bars.
function usageLevel(used, limit) {
  if (limit == null) return "unlimited";
  if (limit <= 0) return "bad";
  const percent = (used / limit) * 100;
  return percent >= config.usageLevels.fullPercent ? "bad" : percent >= config.usageLevels.warnPercent ? "warn" : "ok";
}

// `streamed`: the answer's estimated tokens so far. They stay inside the reservation (the
// store holds all of it until the turn settles), but move from "reserved" to "used" on the
// bar, so it grows as the answer streams and the true figure replaces it at the end.
function withReservation(tokenUsage, reservation, streamed = 0) {
  const held = {};
  const spent = Math.min(streamed, reservation.maxTokens);
  for (const [window, last] of Object.entries(tokenUsage || {})) {
    const usage = currentWindow(window, last);
    held[window] = { ...usage, used: (usage.used || 0) + reservation.totalTokens, reserved: (usage.reserved || 0) + reservation.totalTokens - spent };
  }
  return held;
}

// The bars' last figures belong to a window that may have ended since (a new 10-minute
// window starts empty): the reservation then lands in an empty window, not on old usage.
function currentWindow(window, usage) {
  if (!usage.resetsAt || new Date(usage.resetsAt).getTime() > Date.now()) return usage;
  const next = window === "10m" ? new Date(Math.ceil((Date.now() + 1) / 600_000) * 600_000).toISOString() : null;
  return { ...usage, used: 0, reserved: 0, input: 0, output: 0, resetsAt: next };
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
    node.dataset.level = usageLevel(used, limit);
    const figures = limit == null
      ? _("%(used)s tokens (no limit)", { used: number(used) })
      : _("%(used)s / %(limit)s tokens", { used: number(used), limit: number(limit) });
    node.querySelector(".figures").textContent = reserved
      ? `${figures} · ${_("%(reserved)s reserved for answers in progress", { reserved: number(reserved) })}`
      : figures;
    node.querySelector(".reset").textContent = _("resets %(when)s", { when: formatReset(usage.resetsAt) });
    node.querySelector(".track").setAttribute("aria-valuenow", String(Math.round(percent)));
  }
}

// --- errors -----------------------------------------------------------------------------
// The gateway sends a refusal's code and figures; the page says it in the user's language.
// Its `used` and `limit` come from the same store read as the bars drawn with it.

function windowName(window) {
  return config.windows[window]?.adjective ?? window;
}

// What to do about a refusal, from what would get it through. The gateway already lowers a
// maximum that does not fit to the room left when that room is worth an answer, so a refusal
// means less room than that: a shorter maximum still fits (offered as a button, the user
// judges whether so short an answer is worth it), and so does a shorter conversation. Another
// model would not: the quota is the user's, across models.
function quotaRemedies(error, which, when) {
  const remedies = [];
  const room = answerRoom(error);
  if (room > 0 && error.maxTokens > room) {
    remedies.push(_("send it again with a shorter maximum answer length: at most %(room)s tokens fit", { room: number(room) }));
  }
  remedies.push(_("ask a shorter question or start a new conversation (the whole conversation is sent with each question)"));
  if (error.used != null) remedies.push(_("wait until %(when)s, when the %(window)s quota resets", { when, window: which }));
  else remedies.push(_("ask a gateway admin for a higher limit"));
  return _("What you can do: %(remedies)s.", { remedies: remedies.join("; ") });
}

// The longest answer the refused window still holds, by the counter that refused it.
function answerRoom(error) {
  if (error.used == null || error.limit == null) return null;
  if (error.counter === "input") return 0;
  if (error.counter === "output") return Math.max(0, error.limit - error.used);
  return error.inputTokens == null ? null : Math.max(0, error.limit - error.used - error.inputTokens);
}

function money(usd) {
  return new Intl.NumberFormat(LOCALE, { style: "currency", currency: "USD", maximumFractionDigits: 4 }).format(usd);
}

function describeBudget(error, which, when) {
  if (error.group != null) return describeGroupBudget(error, when);
  if (error.usedUsd == null) {
    return _("This question may cost up to %(needed)s, more than your whole %(window)s budget of %(budget)s. Ask for a shorter answer or pick a cheaper model.",
      { needed: money(error.neededUsd), window: which, budget: money(error.budgetUsd) });
  }
  return _("Your %(window)s budget of %(budget)s is spent: %(used)s used, and this question may cost up to %(needed)s. Pick a cheaper model, ask for a shorter answer, or wait until %(when)s, when the budget resets.",
    { window: which, budget: money(error.budgetUsd), used: money(error.usedUsd), needed: money(error.neededUsd), when });
}

// A group's pooled budget: what all the group's members spend together in a month.
function describeGroupBudget(error, when) {
  if (error.usedUsd == null) {
    return _("This question may cost up to %(needed)s, more than the whole monthly budget your %(group)s group shares (%(budget)s). Ask for a shorter answer or pick a cheaper model.",
      { needed: money(error.neededUsd), group: error.group, budget: money(error.budgetUsd) });
  }
  return _("The monthly budget your %(group)s group shares, %(budget)s, is spent: its members used %(used)s, and this question may cost up to %(needed)s. Pick a cheaper model, ask for a shorter answer, or wait until %(when)s, when the budget resets.",
    { group: error.group, budget: money(error.budgetUsd), used: money(error.usedUsd), needed: money(error.neededUsd), when });
}

function describeQuota(error) {
  const which = windowName(error.window);
  const when = error.resetsAt ? new Date(error.resetsAt).toLocaleString(LOCALE) : _("soon");
  if (error.counter === "cost") return describeBudget(error, which, when);
  const limit = number(error.limit);
  const parts = [];
  if (error.inputTokens != null && error.maxTokens != null) {
    // Why so much: the gateway holds the answer's maximum length before the model writes it.
    parts.push(_("Not sent: this question reserves %(needed)s tokens of your %(window)s quota, about %(input)s for the question and the conversation so far plus up to %(max)s for the answer (its maximum length, held until the answer ends).",
      { needed: number(error.needed), window: which, input: number(error.inputTokens), max: number(error.maxTokens) }));
  }
  if (error.used == null) {
    parts.push(_("That is more than your whole %(window)s quota of %(limit)s.", { window: which, limit }));
  } else {
    parts.push(error.reserved
      ? _("%(used)s of %(limit)s tokens are used, %(reserved)s of them held for answers still running.", { used: number(error.used), limit, reserved: number(error.reserved) })
      : _("%(used)s of %(limit)s tokens are used.", { used: number(error.used), limit }));
    const room = answerRoom(error);
    if (room != null && room < (config.minUsefulAnswerTokens || 0)) {
      parts.push(_("That leaves room for an answer of at most %(room)s tokens, too short to be useful.", { room: number(room) }));
    }
  }
  parts.push(quotaRemedies(error, which, when));
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
  ui.log.classList.toggle("busy", busy); // no edit or regenerate while an answer streams
  ui.input.disabled = false;
}

async function send() {
  const text = ui.input.value.trim();
  const modelId = ui.model.value;
  if (!text || state.inFlight || !modelId || !client) return;
  let conversation = current();
  if (!conversation) {
    conversation = chatHistory.start({ title: text, modelId, isPrivate: ui.privateSwitch.checked });
    state.currentId = conversation.id;
  }
  ui.input.value = "";
  ui.input.dispatchEvent(new Event("input")); // the composer shrinks back
  await ask(conversation, text);
}

// Send the last answer's question again, for a new answer in its place.
// `maxTokens`: a shorter maximum than the page's choice (a refusal's "what fits").
function regenerate({ maxTokens = null } = {}) {
  const conversation = current();
  if (!conversation || state.inFlight) return;
  const index = conversation.messages.map((m) => m.role).lastIndexOf("user");
  if (index < 0) return;
  const { text } = conversation.messages[index];
  conversation.messages = conversation.messages.slice(0, index);
  ask(conversation, text, { fresh: true, maxTokens }); // from the model, not the cached copy of the last answer
}

// An edited question replaces the one at `index`; the answers after it are dropped, since
// they answered something else.
function resendFrom(index, text) {
  const conversation = current();
  if (!conversation || state.inFlight) return;
  conversation.messages = conversation.messages.slice(0, index);
  ask(conversation, text);
}

function requestedMaxTokens() {
  const value = Number.parseInt(ui.maxTokens.value, 10);
  return Number.isFinite(value) && value > 0 ? value : null;
}

async function ask(conversation, text, { fresh = false, maxTokens: shorterMax = null } = {}) {
  const modelId = ui.model.value;
  if (!modelId || state.inFlight || !client) return;
  const request = {
    modelId,
    conversationId: conversation.id,
    messages: [...historyFor(conversation), { role: "user", content: [{ text }] }],
  };
  if (ui.privateSwitch.checked) request.private = true;
  const maxTokens = shorterMax || requestedMaxTokens();
  if (maxTokens) request.inferenceConfig = { maxTokens };
  if (fresh) request.fresh = true;
  const question = { role: "user", text };
  conversation.messages.push(question);
  const answer = { role: "assistant", text: "" };
  conversation.messages.push(answer);
  conversation.modelId = modelId;
  chatHistory.touch(conversation);
  renderConversationList();
  renderMessages();
  const node = ui.log.lastElementChild;
  node.classList.add("streaming");
  state.inFlight = { conversationId: conversation.id, question, message: answer, node, modelId, isPrivate: Boolean(request.private) };
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
  if (turn.reservation) {
    renderUsage(withReservation(state.usage, turn.reservation, estimateTokens(turn.message.text)), { settled: false });
  }
}

function finishTurn({ error = null, metadata = null } = {}) {
  const turn = state.inFlight;
  if (!turn) return;
  state.inFlight = null;
  if (error) turn.message.error = describeError(error);
  if (error && error.type === "QuotaExceeded") {
    const room = answerRoom(error);
    if (room > 0 && error.maxTokens > room) turn.message.fitsMaxTokens = room;
  }
  const conversation = chatHistory.find(turn.conversationId);
  if (conversation) {
    chatHistory.saveTurn(conversation, { question: turn.question, answer: turn.message, metadata,
      stopReason: turn.message.stopped ? "cancelled" : turn.stopReason, isPrivate: turn.isPrivate });
  }
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
    turn.reservation = reservation;
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
    turn.stopReason = event.messageStop.stopReason;
    if (event.messageStop.stopReason === "cancelled") turn.message.stopped = true;
    if (event.messageStop.stopReason === "max_tokens") turn.message.error = _("The answer was cut at the maximum length.");
    // The notice itself arrives as text; this marks the message so it reads as a refusal.
    if (event.messageStop.stopReason === "guardrail_intervened") turn.message.error = _("Blocked by the content policy.");
  } else if (event.metadata) {
    const { usage = {}, metrics = {} } = event.metadata;
    turn.message.meta = {
      modelId: event.metadata.modelId, cache: event.metadata.cache, latencyMs: metrics.latencyMs,
      inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, totalTokens: usage.totalTokens,
    };
    finishTurn({ metadata: event.metadata });
  } else if (event.error) {
    if (event.usage) turn.message.meta = { modelId: turn.modelId, ...event.usage };
    finishTurn({ error: event.error });
  }
}

// --- connection -------------------------------------------------------------------------

function onConnectionState(status, detail) {
  ui.status.dataset.state = status;
  if (status === "open") {
    ui.status.textContent = _("Connected");
    showNotice("");
    // Back after a loss: a turn cut off by it settled on the server meanwhile.
    if (state.wasConnected) refreshUsage();
    state.wasConnected = true;
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

async function refreshUsage() {
  const response = await fetch(config.meUrl, { credentials: "same-origin", headers: { Accept: "application/json" } }).catch(() => null);
  if (response && response.ok && !state.inFlight) renderUsage((await response.json()).usage);
}

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
const drawer = conversationDrawer({ sidebar: ui.sidebar, toggle: ui.sidebarToggle, closeButton: ui.sidebarClose, backdrop: ui.backdrop });
// Escape closes the drawer first, else stops the answer being streamed (an inline edit
// handles its own Escape).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  if (drawer.isOpen()) drawer.close();
  else if (state.inFlight) { event.preventDefault(); stop(); }
});
autoGrow(ui.input);
const rememberedMax = localStorage.getItem(MAX_TOKENS_KEY);
if (rememberedMax && [...ui.maxTokens.options].some((o) => o.value === rememberedMax)) ui.maxTokens.value = rememberedMax;
ui.maxTokens.addEventListener("change", () => localStorage.setItem(MAX_TOKENS_KEY, ui.maxTokens.value));
ui.newButton.addEventListener("click", startNewConversation);
ui.model.addEventListener("change", () => localStorage.setItem(MODEL_KEY, ui.model.value));
ui.privateSwitch.checked = localStorage.getItem(PRIVATE_KEY) === "1";
ui.privateSwitch.addEventListener("change", () => localStorage.setItem(PRIVATE_KEY, ui.privateSwitch.checked ? "1" : "0"));

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
chatHistory.load();
loadMe().catch(() => showNotice(_("Could not load your models and usage. Reload the page to try again."), "bad"));
