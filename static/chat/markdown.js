// A small Markdown renderer that builds DOM nodes with textContent only: model and user text
// never reaches innerHTML, so an answer cannot inject markup or script. Supports what chat
// answers use: paragraphs, headings, bullet and numbered lists, block quotes, fenced code
// (also while still streaming, unterminated), inline code, bold, italic and http(s) links.

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*|__[^_\n]+__)|(\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)|(\[[^\]\n]+\]\((https?:\/\/[^\s)]+)\))/;

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

export function renderInline(parent, text) {
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) { parent.append(document.createTextNode(rest)); break; }
    if (match.index) parent.append(document.createTextNode(rest.slice(0, match.index)));
    const [whole, code, bold, italic, link, href] = match;
    if (code) {
      const node = el("code"); node.textContent = code.slice(1, -1); parent.append(node);
    } else if (bold) {
      const node = el("strong"); renderInline(node, bold.slice(2, -2)); parent.append(node);
    } else if (italic) {
      const node = el("em"); renderInline(node, italic.slice(1, -1)); parent.append(node);
    } else if (link) {
      const node = el("a");
      node.href = href; // only http(s) matched above: no javascript: URLs
      node.rel = "noopener noreferrer nofollow";
      node.target = "_blank";
      node.textContent = link.slice(1, link.indexOf("]("));
      parent.append(node);
    }
    rest = rest.slice(match.index + whole.length);
  }
}

function paragraph(lines) {
  const node = el("p");
  lines.forEach((line, index) => {
    if (index) node.append(el("br"));
    renderInline(node, line);
  });
  return node;
}

// Renders `source` into `container`, replacing what was there.
export function renderMarkdown(container, source) {
  const lines = String(source).replace(/\r\n?/g, "\n").split("\n");
  const blocks = document.createDocumentFragment();
  let i = 0;
  let para = [];
  const flush = () => { if (para.length) { blocks.append(paragraph(para)); para = []; } };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)\s*$/);
    if (fence) {
      flush();
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) { body.push(lines[i]); i += 1; }
      i += 1; // the closing fence (absent while streaming)
      const pre = el("pre", "code-block");
      const code = el("code");
      if (fence[2]) code.dataset.lang = fence[2];
      code.textContent = body.join("\n");
      pre.append(code);
      blocks.append(pre);
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      flush();
      const node = el(`h${Math.min(6, heading[1].length + 2)}`); // h3..h6: answers sit under the page's h1
      renderInline(node, heading[2]);
      blocks.append(node);
      i += 1;
      continue;
    }
    const item = line.match(/^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/);
    if (item) {
      flush();
      const ordered = /\d/.test(item[1]);
      const list = el(ordered ? "ol" : "ul");
      while (i < lines.length) {
        const next = lines[i].match(/^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/);
        if (!next || /\d/.test(next[1]) !== ordered) break;
        const li = el("li");
        renderInline(li, next[2]);
        list.append(li);
        i += 1;
      }
      blocks.append(list);
      continue;
    }
    if (/^\s*>/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) { quoted.push(lines[i].replace(/^\s*>\s?/, "")); i += 1; }
      const node = el("blockquote");
      node.append(paragraph(quoted));
      blocks.append(node);
      continue;
    }
    if (!line.trim()) { flush(); i += 1; continue; }
    para.push(line);
    i += 1;
  }
  flush();
  container.replaceChildren(blocks);
}
