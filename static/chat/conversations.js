// Conversation history for the chat page, kept on the server (`/api/conversations/`).
//
// chat.js streams answers; this module keeps the conversations: the sidebar list (newest
// first, search, "more"), rename, delete, export, and saving every finished turn through the
// history API, whichever door (Django's WebSocket or AppSync) streamed it. When the user's
// policy keeps no history, conversations live in this page only and nothing is sent.

const gettextOf = () => window.gettext || ((text) => text);
const interpolateOf = () => window.interpolate || ((text, params) => text.replace(/%\((\w+)\)s/g, (_, name) => String(params[name])));
const _ = (text, params) => (params ? interpolateOf()(gettextOf()(text), params, true) : gettextOf()(text));
const SEARCH_DELAY_MS = 250;

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export class HistoryError extends Error {
  constructor(status, errorType, message) {
    super(message);
    this.status = status;
    this.errorType = errorType;
  }
}

// The history API over fetch: JSON in, JSON out, the server's typed errors as HistoryError.
export class HistoryApi {
  constructor(baseUrl) {
    this.baseUrl = baseUrl;
  }

  url(path = "", params = null) {
    const query = params ? `?${new URLSearchParams(params)}` : "";
    return `${this.baseUrl}${path}${query}`;
  }

  async request(method, path = "", { body = undefined, params = null } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(this.url(path, params), {
        method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new HistoryError(0, "NetworkError", _("The server could not be reached."));
    }
    if (response.status === 204) return null;
    let payload = null;
    try { payload = await response.json(); } catch { /* not JSON: worded below */ }
    if (!response.ok) {
      const error = payload && payload.errors && payload.errors[0];
      throw new HistoryError(response.status, error ? error.errorType : "HttpError",
        error ? error.message : _("The server answered with status %(status)s.", { status: response.status }));
    }
    return payload;
  }

  list({ query = "", page = 1 } = {}) { return this.request("GET", "", { params: { q: query, page } }); }
  get(id) { return this.request("GET", encodeURIComponent(id)); }
  create(body) { return this.request("POST", "", { body }); }
  appendTurn(id, body) { return this.request("POST", `${encodeURIComponent(id)}/turns`, { body }); }
  rename(id, title) { return this.request("PATCH", encodeURIComponent(id), { body: { title } }); }
  remove(id) { return this.request("DELETE", encodeURIComponent(id)); }
  exportUrl(id, format) { return this.url(`${encodeURIComponent(id)}/export`, { format }); }
  exportAllUrl() { return this.url("export"); }
}

function localId() {
  return "c-" + (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));
}

// Why a stored answer ended, as chat.js shows it on a live one.
function fromStoredMessage(message) {
  const shown = { role: message.role, text: message.content, source: message.source, modelId: message.modelId,
    usage: { inputTokens: message.inputTokens, outputTokens: message.outputTokens } };
  if (message.stopReason === "cancelled") shown.stopped = true;
  if (message.stopReason === "max_tokens") shown.error = _("The answer was cut at the maximum length.");
  if (message.stopReason === "guardrail_intervened") shown.error = _("Blocked by the content policy.");
  return shown;
}

function fromSummary(summary) {
  return { id: summary.id, serverId: summary.id, title: summary.title, modelId: summary.modelId,
    private: summary.private, updatedAt: Date.parse(summary.updatedAt), messages: null };
}

function sourceOf(metadata) {
  if (!metadata) return "model";
  if (metadata.cache === "prepared") return "prepared";
  if (metadata.cache === "hit") return "cache";
  return "model";
}

// The sidebar's conversations and the saving of turns. `conversations` is what chat.js reads:
// each {id, serverId, title, modelId, private, updatedAt, messages} where `messages` is null
// until the conversation is opened (the list carries titles only).
export class ConversationHistory {
  constructor({ config, elements, currentId, onOpen, onNotice }) {
    this.api = new HistoryApi(config.url);
    this.kept = Boolean(config.kept);
    this.elements = elements;
    this.currentId = currentId;
    this.onOpen = onOpen;
    this.onNotice = onNotice;
    this.conversations = []; // what the list shows (a search shows its matches only)
    this.known = new Map(); // every conversation this page has seen, by id, listed or not
    this.query = "";
    this.page = 0;
    this.hasNext = false;
    this.searchTimer = null;
    this.wire();
  }

  wire() {
    const { search, more, exportAll } = this.elements;
    // An open actions menu closes when the user clicks anywhere else.
    document.addEventListener("click", (event) => {
      this.elements.list.querySelectorAll(".conversation-actions[open]").forEach((menu) => {
        if (!menu.contains(event.target)) menu.open = false;
      });
    });
    if (!this.kept) {
      [search, more, exportAll].forEach((node) => { if (node) node.hidden = true; });
      return;
    }
    if (exportAll) exportAll.href = this.api.exportAllUrl();
    if (search) {
      search.addEventListener("input", () => {
        clearTimeout(this.searchTimer);
        this.searchTimer = setTimeout(() => this.load({ query: search.value }), SEARCH_DELAY_MS);
      });
      search.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { event.preventDefault(); clearTimeout(this.searchTimer); this.load({ query: search.value }); }
      });
    }
    if (more) more.addEventListener("click", () => this.loadMore());
  }

  find(id) {
    return this.known.get(id) || null;
  }

  register(conversation) {
    this.known.set(conversation.id, conversation);
    return conversation;
  }

  // The first page of the list (or of a search). Conversations started on this page and not
  // saved yet stay on top.
  async load({ query = this.query } = {}) {
    if (!this.kept) { this.render(); return; }
    this.query = query.trim();
    const seq = (this.loadSeq = (this.loadSeq || 0) + 1);
    try {
      const page = await this.api.list({ query: this.query, page: 1 });
      if (seq !== this.loadSeq) return; // a newer search answered first
      const unsaved = this.query ? [] : [...this.known.values()].filter((c) => !c.serverId && c.messages && c.messages.length);
      const loaded = page.conversations.map((summary) => this.merged(summary));
      this.conversations = [...unsaved, ...loaded];
      this.page = 1;
      this.hasNext = page.hasNext;
    } catch (error) {
      this.onNotice(_("Could not load your conversations: %(reason)s", { reason: error.message }));
    }
    this.render();
  }

  async loadMore() {
    try {
      const page = await this.api.list({ query: this.query, page: this.page + 1 });
      const listed = new Set(this.conversations.map((c) => c.serverId));
      this.conversations.push(...page.conversations.filter((s) => !listed.has(s.id)).map((s) => this.merged(s)));
      this.page += 1;
      this.hasNext = page.hasNext;
    } catch (error) {
      this.onNotice(_("Could not load your conversations: %(reason)s", { reason: error.message }));
    }
    this.render();
  }

  // A summary from the server: the conversation this page already holds for it (with its
  // messages), brought up to date, or a new one.
  merged(summary) {
    const known = [...this.known.values()].find((c) => c.serverId === summary.id);
    if (!known) return this.register(fromSummary(summary));
    Object.assign(known, { title: summary.title, updatedAt: Date.parse(summary.updatedAt), private: summary.private });
    return known;
  }

  // The conversation with its messages, fetched when it was only listed so far.
  async open(id) {
    const conversation = this.find(id);
    if (!conversation || conversation.messages) return conversation;
    try {
      const detail = await this.api.get(conversation.serverId);
      conversation.messages = detail.messages.map(fromStoredMessage);
      conversation.modelId = detail.modelId;
    } catch (error) {
      if (error.status === 404) {
        this.known.delete(conversation.id);
        this.conversations = this.conversations.filter((c) => c !== conversation);
        this.render();
      }
      this.onNotice(_("Could not open the conversation: %(reason)s", { reason: error.message }));
      return null;
    }
    return conversation;
  }

  // A new conversation, on this page until its first turn is saved.
  start({ title, modelId, isPrivate }) {
    const conversation = this.register({ id: localId(), serverId: null, title: title.slice(0, 60), modelId,
      private: isPrivate, updatedAt: Date.now(), messages: [] });
    this.conversations.unshift(conversation);
    return conversation;
  }

  touch(conversation) {
    conversation.updatedAt = Date.now();
    this.conversations = [conversation, ...this.conversations.filter((c) => c !== conversation)];
  }

  // Save a finished turn: the question and, when one came, the answer with its model, tokens
  // and where it came from. Saves of one conversation run in order, so the second turn waits
  // for the first to have created the conversation.
  saveTurn(conversation, { question, answer, metadata = null, stopReason = "", isPrivate = false }) {
    this.touch(conversation);
    conversation.private = conversation.private || isPrivate;
    this.render();
    if (!this.kept) return Promise.resolve();
    const messages = [{ role: "user", content: question.text }];
    if (answer && answer.text) {
      const usage = (metadata && metadata.usage) || {};
      messages.push({ role: "assistant", content: answer.text, modelId: (metadata && metadata.modelId) || conversation.modelId || "",
        inputTokens: usage.inputTokens || 0, outputTokens: usage.outputTokens || 0, source: sourceOf(metadata),
        stopReason: stopReason || "" });
    }
    // What came before this question stays; what followed it (a regenerated answer, the turns
    // after an edited question) is replaced.
    const keep = Math.max(0, conversation.messages.indexOf(question));
    const previous = conversation.saving || Promise.resolve();
    conversation.saving = previous.then(() => this.store(conversation, messages, isPrivate, keep));
    return conversation.saving;
  }

  async store(conversation, messages, isPrivate, keep) {
    try {
      if (conversation.serverId) {
        await this.api.appendTurn(conversation.serverId, { messages, private: isPrivate, keep });
      } else {
        const created = await this.api.create({ title: conversation.title, modelId: conversation.modelId || "",
          private: conversation.private, messages });
        conversation.serverId = created.id;
        conversation.title = created.title;
      }
    } catch (error) {
      if (error.errorType === "HistoryNotKept") { this.kept = false; return; }
      this.onNotice(_("This turn was not saved to your history: %(reason)s", { reason: error.message }));
    }
    this.render();
  }

  async rename(conversation, title) {
    const clean = title.trim();
    if (!clean || clean === conversation.title) { this.render(); return; }
    if (!conversation.serverId) { conversation.title = clean; this.render(); return; }
    try {
      const renamed = await this.api.rename(conversation.serverId, clean);
      conversation.title = renamed.title;
    } catch (error) {
      this.onNotice(_("Could not rename the conversation: %(reason)s", { reason: error.message }));
    }
    this.render();
  }

  async remove(conversation) {
    if (!window.confirm(_("Delete “%(title)s” for good?", { title: conversation.title }))) return false;
    try {
      if (conversation.saving) await conversation.saving;
      if (conversation.serverId) await this.api.remove(conversation.serverId);
    } catch (error) {
      if (error.status !== 404) {
        this.onNotice(_("Could not delete the conversation: %(reason)s", { reason: error.message }));
        return false;
      }
    }
    this.known.delete(conversation.id);
    this.conversations = this.conversations.filter((c) => c !== conversation);
    this.render();
    return true;
  }

  // --- the sidebar list ---

  render() {
    const items = this.conversations.map((conversation) => this.item(conversation));
    if (!items.length && this.query) {
      const empty = document.createElement("li");
      empty.className = "conversation-empty";
      empty.textContent = _("No conversation matches “%(query)s”.", { query: this.query });
      items.push(empty);
    }
    this.elements.list.replaceChildren(...items);
    if (this.elements.more) this.elements.more.hidden = !(this.kept && this.hasNext);
  }

  item(conversation) {
    const li = document.createElement("li");
    li.className = "conversation-item";
    li.dataset.conversationId = conversation.serverId || conversation.id;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation" + (conversation.id === this.currentId() ? " active" : "");
    button.textContent = conversation.title || _("New conversation");
    button.title = new Date(conversation.updatedAt).toLocaleString(document.documentElement.lang || undefined);
    if (conversation.private) {
      const badge = document.createElement("span");
      badge.className = "private-badge";
      badge.textContent = _("private");
      button.prepend(badge);
    }
    button.addEventListener("click", () => this.onOpen(conversation.id));
    li.append(button, this.actions(conversation, li));
    return li;
  }

  actions(conversation, li) {
    const menu = document.createElement("details");
    menu.className = "conversation-actions";
    const summary = document.createElement("summary");
    summary.textContent = "⋯";
    summary.setAttribute("aria-label", _("Actions for “%(title)s”", { title: conversation.title }));
    summary.title = _("Rename, export or delete");
    const rename = this.actionButton(_("Rename"), "rename", () => this.editTitle(conversation, li));
    const remove = this.actionButton(_("Delete"), "delete", async () => {
      menu.open = false;
      if (await this.remove(conversation) && conversation.id === this.currentId()) this.onOpen(null);
    });
    menu.append(summary, rename);
    if (conversation.serverId) {
      menu.append(this.exportLink(_("Export as Markdown"), this.api.exportUrl(conversation.serverId, "markdown"), "export-markdown"),
        this.exportLink(_("Export as JSON"), this.api.exportUrl(conversation.serverId, "json"), "export-json"));
    }
    menu.append(remove);
    return menu;
  }

  actionButton(label, action, onClick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "action";
    button.dataset.action = action;
    button.textContent = label;
    button.addEventListener("click", onClick);
    return button;
  }

  exportLink(label, href, action) {
    const link = document.createElement("a");
    link.className = "action";
    link.dataset.action = action;
    link.href = href;
    link.setAttribute("download", "");
    link.textContent = label;
    return link;
  }

  // Rename in place: Enter keeps the new title, Escape keeps the old one.
  editTitle(conversation, li) {
    const input = document.createElement("input");
    input.type = "text";
    input.className = "conversation-title-input";
    input.value = conversation.title;
    input.maxLength = 200;
    input.setAttribute("aria-label", _("New title"));
    let done = false;
    const finish = (keep) => {
      if (done) return;
      done = true;
      if (keep) this.rename(conversation, input.value);
      else this.render();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); finish(true); }
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); finish(false); }
    });
    input.addEventListener("blur", () => finish(true));
    li.replaceChildren(input);
    input.focus();
    input.select();
  }
}
