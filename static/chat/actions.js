// What a person does with messages and the page around them: copy a message or a code block,
// edit a question and send it again, regenerate an answer, read where an answer came from
// (model, tokens, time; cached and prepared answers marked as such), a composer that grows
// and the conversation drawer of narrow screens. chat.js owns the conversation and the
// turns; this module only builds nodes and calls back.

const gettext = window.gettext || ((text) => text);
const interpolate = window.interpolate || ((text, params) => text.replace(/%\((\w+)\)s/g, (_, name) => String(params[name])));
const _ = (text, params) => (params ? interpolate(gettext(text), params, true) : gettext(text));
const LOCALE = document.documentElement.lang || undefined;
const number = (value) => Number(value).toLocaleString(LOCALE);

// --- copying ----------------------------------------------------------------------------

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on another host than localhost has no Clipboard API: the old selection route.
  const scratch = document.createElement("textarea");
  scratch.value = text;
  scratch.setAttribute("readonly", "");
  scratch.style.position = "fixed";
  scratch.style.opacity = "0";
  document.body.append(scratch);
  scratch.select();
  const copied = document.execCommand("copy");
  scratch.remove();
  if (!copied) throw new Error("copy refused");
}

function copyButton(label, textOf, className = "copy") {
  const button = actionButton(label, className);
  button.addEventListener("click", async () => {
    try {
      await copyText(textOf());
      flash(button, _("Copied"));
    } catch {
      flash(button, _("Copy failed"));
    }
  });
  return button;
}

function flash(button, text) {
  const original = button.dataset.label;
  button.textContent = text;
  clearTimeout(button.flashTimer);
  button.flashTimer = setTimeout(() => { button.textContent = original; }, 1500);
}

function actionButton(label, className) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `message-action ${className}`;
  button.textContent = label;
  button.dataset.label = label;
  return button;
}

// Every rendered code block gets its own copy button (the code only, not the whole answer).
export function addCodeCopyButtons(body) {
  body.querySelectorAll("pre.code-block").forEach((block) => {
    if (block.querySelector(".copy-code")) return;
    const code = block.querySelector("code") || block;
    block.append(copyButton(_("Copy code"), () => code.textContent, "copy-code"));
  });
}

// --- one message's actions and footer ------------------------------------------------------

// `actions`: {onEdit, onRegenerate, onSendShorter with fits} when the page allows them for
// this message (no turn running).
export function messageActions(message, actions = {}) {
  const bar = document.createElement("div");
  bar.className = "message-actions";
  if (message.text) bar.append(copyButton(message.role === "user" ? _("Copy question") : _("Copy answer"), () => message.text));
  if (actions.onEdit) {
    const edit = actionButton(_("Edit"), "edit");
    edit.addEventListener("click", actions.onEdit);
    bar.append(edit);
  }
  if (actions.onSendShorter) {
    const shorter = actionButton(_("Send again with at most %(room)s tokens of answer", { room: number(actions.fits) }), "send-shorter");
    shorter.addEventListener("click", actions.onSendShorter);
    bar.append(shorter);
  }
  if (actions.onRegenerate) {
    // An answer that never came (refused, failed) is tried again; one that came, regenerated.
    const again = actionButton(message.text ? _("Regenerate") : _("Try again"), "regenerate");
    again.addEventListener("click", actions.onRegenerate);
    bar.append(again);
  }
  return bar;
}

// A stored answer is not a model's answer of this moment: say so above its text.
export function sourceBadge(meta) {
  if (!meta || (meta.cache !== "hit" && meta.cache !== "prepared")) return null;
  const badge = document.createElement("p");
  badge.className = `source-badge ${meta.cache === "hit" ? "cached" : "prepared"}`;
  badge.textContent = meta.cache === "hit"
    ? _("Cached answer: given earlier to the same question, not written again by the model")
    : _("Prepared answer: written by your organisation, not by a model");
  return badge;
}

export function answerFooter(meta, modelName) {
  const footer = document.createElement("p");
  footer.className = "answer-meta";
  const parts = [];
  if (meta.cache === "hit" || meta.cache === "prepared") parts.push(_("no tokens used"));
  else {
    parts.push(modelName || meta.modelId || "");
    parts.push(_("%(total)s tokens (%(input)s in, %(output)s out)",
      { total: number(meta.totalTokens || 0), input: number(meta.inputTokens || 0), output: number(meta.outputTokens || 0) }));
  }
  if (meta.latencyMs != null) parts.push(_("%(seconds)s s", { seconds: (meta.latencyMs / 1000).toLocaleString(LOCALE, { maximumFractionDigits: 1 }) }));
  footer.textContent = parts.filter(Boolean).join(" · ");
  return footer;
}

// An inline editor in place of a question's text: Enter (or the button) sends the new text,
// Escape (or Cancel) puts the question back as it was.
export function editQuestion(body, text, { onSend, onCancel }) {
  const form = document.createElement("form");
  form.className = "edit-question";
  const input = document.createElement("textarea");
  input.value = text;
  input.setAttribute("aria-label", _("Edit your question"));
  const send = actionButton(_("Send edited question"), "send-edit");
  send.type = "submit";
  const cancel = actionButton(_("Cancel"), "cancel-edit");
  const buttons = document.createElement("div");
  buttons.className = "edit-buttons";
  buttons.append(send, cancel);
  form.append(input, buttons);
  const submit = () => { const value = input.value.trim(); if (value) onSend(value); };
  form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  cancel.addEventListener("click", onCancel);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); onCancel(); }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
  });
  body.replaceChildren(form);
  autoGrow(input);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

// --- the composer -----------------------------------------------------------------------

// The textarea follows its content up to a third of the window; past that it scrolls.
export function autoGrow(textarea) {
  const fit = () => {
    textarea.style.height = "auto";
    const limit = Math.round(window.innerHeight / 3);
    const wanted = textarea.scrollHeight + (textarea.offsetHeight - textarea.clientHeight);
    textarea.style.height = `${Math.min(wanted, limit)}px`;
    textarea.style.overflowY = wanted > limit ? "auto" : "hidden";
  };
  textarea.addEventListener("input", fit);
  window.addEventListener("resize", fit);
  fit();
  return fit;
}

// --- the drawer -------------------------------------------------------------------------

// The conversation list as a drawer on narrow screens: the toggle opens and closes it (it
// stays above the backdrop), and the close button, the backdrop and Escape close it.
export function conversationDrawer({ sidebar, toggle, closeButton, backdrop }) {
  const setOpen = (open) => {
    sidebar.classList.toggle("open", open);
    backdrop.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("drawer-open", open);
  };
  toggle.addEventListener("click", () => {
    const open = !sidebar.classList.contains("open");
    setOpen(open);
    if (open) closeButton.focus({ preventScroll: true });
  });
  closeButton.addEventListener("click", () => { setOpen(false); toggle.focus(); });
  backdrop.addEventListener("click", () => setOpen(false));
  // Picking a conversation (or starting one) is done with the drawer.
  sidebar.addEventListener("click", (event) => {
    if (event.target.closest("button.conversation, #new-conversation")) setOpen(false);
  });
  setOpen(false);
  return {
    isOpen: () => sidebar.classList.contains("open"),
    close: () => setOpen(false),
  };
}
