// static/chat/markdown.js: what an answer renders to, and that model text never becomes markup.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { createDocument, html } from "./fake-dom.mjs";
import { importStatic } from "./load.mjs";

const { renderMarkdown, renderInline } = await importStatic("chat/markdown.js");

let document;
beforeEach(() => { document = globalThis.document = createDocument(); });

function render(source) {
  const container = document.createElement("div");
  renderMarkdown(container, source);
  return container;
}
const markup = (source) => html(render(source)).replace(/^<div>|<\/div>$/g, "");
const tags = (node) => node.findAll(() => true).map((e) => e.tagName);

test("a script tag in an answer stays text", () => {
  const node = render("Hi <script>alert(1)</script> <img src=x onerror=alert(2)>");
  assert.deepEqual(tags(node), ["p"]);
  assert.equal(node.textContent, "Hi <script>alert(1)</script> <img src=x onerror=alert(2)>");
  assert.equal(markup("<b onclick=x>bold</b>"), "<p>&lt;b onclick=x&gt;bold&lt;/b&gt;</p>");
});

test("only http(s) links become anchors; javascript: and data: links stay text", () => {
  assert.equal(
    markup("[docs](https://example.com/a?b=1)"),
    '<p><a href="https://example.com/a?b=1" rel="noopener noreferrer nofollow" target="_blank">docs</a></p>',
  );
  for (const href of ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<script>1</script>", "//evil.example/x"]) {
    const node = render(`[click](${href})`);
    assert.equal(node.querySelector("a"), null, href);
    assert.equal(node.textContent, `[click](${href})`);
  }
});

test("a link's text and target cannot break out into attributes", () => {
  const node = render('[x" onmouseover="alert(1)](https://example.com/")');
  const anchor = node.querySelector("a");
  assert.equal(anchor.getAttribute("href"), 'https://example.com/"');
  assert.deepEqual([...anchor.attributes.keys()], ["href", "rel", "target"]);
  assert.equal(anchor.textContent, 'x" onmouseover="alert(1)');
});

test("fenced code keeps its text verbatim, with the language as data, even unterminated", () => {
  assert.equal(
    markup("Before\n```python\nif a < b and **c**:\n    print('<b>')\n```\nAfter"),
    '<p>Before</p><pre class="code-block"><code data-lang="python">if a &lt; b and **c**:\n    print(\'&lt;b&gt;\')</code></pre><p>After</p>',
  );
  // While the answer streams the closing fence has not arrived yet.
  assert.equal(markup("~~~\nline 1\nline 2"), '<pre class="code-block"><code>line 1\nline 2</code></pre>');
});

test("bullet and numbered lists, and a change of kind starts a new list", () => {
  assert.equal(markup("- one\n* **two**\n+ three"), "<ul><li>one</li><li><strong>two</strong></li><li>three</li></ul>");
  assert.equal(markup("1. first\n2) second\n- other"), "<ol><li>first</li><li>second</li></ol><ul><li>other</li></ul>");
  assert.equal(markup("Intro\n- a\n\nOutro"), "<p>Intro</p><ul><li>a</li></ul><p>Outro</p>");
});

test("headings sit below the page's h1, paragraphs join lines with <br>, quotes nest a paragraph", () => {
  assert.equal(markup("# Title\n###### Deep"), "<h3>Title</h3><h6>Deep</h6>");
  assert.equal(markup("line one\r\nline two\n\nnext"), "<p>line one<br>line two</p><p>next</p>");
  assert.equal(markup("> quoted *text*\n> more"), "<blockquote><p>quoted <em>text</em><br>more</p></blockquote>");
});

test("inline code is literal: emphasis and links inside it are not rendered", () => {
  assert.equal(markup("Use `**not bold** [a](https://x.y)` and __bold__ _it_"),
    "<p>Use <code>**not bold** [a](https://x.y)</code> and <strong>bold</strong> <em>it</em></p>");
  assert.equal(markup("2 * 3 * 4"), "<p>2 * 3 * 4</p>");
});

test("rendering replaces what the container held; renderInline appends", () => {
  const container = render("first");
  renderMarkdown(container, "second");
  assert.equal(html(container), "<div><p>second</p></div>");
  const span = document.createElement("span");
  renderInline(span, "a ");
  renderInline(span, "**b**");
  assert.equal(html(span), "<span>a <strong>b</strong></span>");
  assert.equal(markup(null), "<p>null</p>");
});
