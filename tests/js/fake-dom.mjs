// Just enough of the DOM for the page scripts under test: element trees built with
// createElement/createElementNS/createTextNode, attributes, dataset, textContent, and a
// serializer so a test can assert on the markup the page would show. Anything the scripts
// use that is missing here throws, so a script change that needs more DOM fails loudly.

export class Text {
  constructor(data) { this.nodeType = 3; this.data = String(data); this.parentNode = null; }
  get textContent() { return this.data; }
}

class Node {
  constructor() { this.childNodes = []; this.parentNode = null; }

  _adopt(child) {
    if (typeof child === "string") child = new Text(child);
    if (child instanceof Fragment) return child.childNodes.splice(0).map((c) => this._adopt(c)).flat();
    if (child.parentNode) child.parentNode.childNodes.splice(child.parentNode.childNodes.indexOf(child), 1);
    child.parentNode = this;
    return [child];
  }

  append(...children) { children.forEach((c) => this.childNodes.push(...this._adopt(c))); }
  appendChild(child) { this.append(child); return child; }
  replaceChildren(...children) { this.childNodes = []; this.append(...children); }

  get children() { return this.childNodes.filter((c) => c instanceof Element); }
  get lastElementChild() { return this.children.at(-1) ?? null; }
  get textContent() { return this.childNodes.map((c) => c.textContent).join(""); }
  set textContent(value) { this.replaceChildren(new Text(value)); }

  // Every element below this one, depth first, that `match` accepts.
  findAll(match) {
    const found = [];
    for (const child of this.children) {
      if (match(child)) found.push(child);
      found.push(...child.findAll(match));
    }
    return found;
  }

  // Selectors the scripts use: a tag name, `.class` or `#id`.
  querySelectorAll(selector) {
    if (selector.startsWith(".")) return this.findAll((e) => e.className.split(/\s+/).includes(selector.slice(1)));
    if (selector.startsWith("#")) return this.findAll((e) => e.getAttribute("id") === selector.slice(1));
    if (!/^[a-z][a-z0-9-]*$/i.test(selector)) throw new Error(`fake DOM: unsupported selector ${selector}`);
    return this.findAll((e) => e.tagName === selector.toLowerCase());
  }
  querySelector(selector) { return this.querySelectorAll(selector)[0] ?? null; }
}

export class Fragment extends Node {}

// Properties the scripts set that a real element reflects as attributes.
const REFLECTED = { className: "class", href: "href", rel: "rel", target: "target", id: "id", title: "title" };

export class Element extends Node {
  constructor(tagName, namespaceURI = "http://www.w3.org/1999/xhtml") {
    super();
    this.tagName = tagName.toLowerCase();
    this.namespaceURI = namespaceURI;
    this.attributes = new Map();
    this.dataset = {};
    this.style = {};
  }
  setAttribute(name, value) { this.attributes.set(name, String(value)); }
  getAttribute(name) { return this.attributes.has(name) ? this.attributes.get(name) : null; }
  hasAttribute(name) { return this.attributes.has(name); }
}
for (const [property, attribute] of Object.entries(REFLECTED)) {
  Object.defineProperty(Element.prototype, property, {
    get() { return this.getAttribute(attribute) ?? ""; },
    set(value) { this.setAttribute(attribute, value); },
  });
}

const VOID = new Set(["br", "hr", "img", "input"]);
const escapeText = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const escapeAttribute = (text) => escapeText(text).replace(/"/g, "&quot;");

// The markup a browser would serialize for `node` (attributes in insertion order, dataset as
// data-* attributes), used to assert on structure and escaping in one line.
export function html(node) {
  if (node instanceof Text) return escapeText(node.data);
  const inner = node.childNodes.map(html).join("");
  if (!(node instanceof Element)) return inner;
  const attributes = [...node.attributes].map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`);
  for (const [k, v] of Object.entries(node.dataset)) {
    attributes.push(` data-${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}="${escapeAttribute(String(v))}"`);
  }
  if (VOID.has(node.tagName)) return `<${node.tagName}${attributes.join("")}>`;
  return `<${node.tagName}${attributes.join("")}>${inner}</${node.tagName}>`;
}

export function createDocument() {
  const listeners = {};
  const body = new Element("body");
  return {
    cookie: "",
    body,
    createElement: (tag) => new Element(tag),
    createElementNS: (ns, tag) => new Element(tag, ns),
    createTextNode: (text) => new Text(text),
    createDocumentFragment: () => new Fragment(),
    getElementById: (id) => body.querySelector(`#${id}`),
    addEventListener: (type, listener) => { (listeners[type] ||= []).push(listener); },
    dispatch: (type) => (listeners[type] || []).forEach((listener) => listener({ type })),
  };
}
