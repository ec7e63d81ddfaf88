// static/analytics/charts.js (a classic script): the scale, ticks, bars, lines, gaps and labels
// of the SVG it draws for a report run, run in a sandbox with the fake DOM as the page.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import vm from "node:vm";

import { createDocument, html } from "./fake-dom.mjs";
import { STATIC } from "./load.mjs";

const SOURCE = readFileSync(join(STATIC, "analytics/charts.js"), "utf8");

function page() {
  const document = createDocument();
  const window = {};
  vm.runInNewContext(SOURCE, { window, document }, { filename: "charts.js" });
  return { document, draw: window.reportChartDraw };
}

function chart(data) {
  const { document, draw } = page();
  const container = document.createElement("div");
  const svg = draw(container, data);
  return { container, svg };
}

const PLOT_H = 320 - 16 - 64; // the SVG's height less its top and bottom margins
const ticks = (svg) => svg.querySelectorAll(".tick").map((t) => t.textContent);
const yTicks = (svg) => svg.querySelectorAll(".tick").filter((t) => t.getAttribute("text-anchor") === "end" && !t.getAttribute("transform")).map((t) => t.textContent);

test("bars: small integer counts get whole-number ticks and bars proportional to the top", () => {
  const { svg } = chart({ kind: "bar", x: "model", y: "turns", columns: ["model", "turns"], rows: [["a", 3], ["b", 7]] });
  assert.deepEqual(yTicks(svg), ["0", "2", "4", "6", "8"]);
  const bars = svg.querySelectorAll(".bar");
  assert.deepEqual(bars.map((b) => Number(b.getAttribute("height"))), [PLOT_H * 3 / 8, PLOT_H * 7 / 8]);
  // Each bar stands on the x axis.
  bars.forEach((b) => assert.equal(Number(b.getAttribute("y")) + Number(b.getAttribute("height")), 16 + PLOT_H));
  assert.deepEqual(svg.querySelectorAll(".value").map((v) => v.textContent), ["3", "7"]);
  assert.deepEqual(bars.map((b) => b.querySelector("title").textContent), ["a: 3", "b: 7"]);
  assert.equal(svg.getAttribute("class"), "report-chart chart-bar");
  assert.equal(svg.getAttribute("viewBox"), "0 0 860 320");
  assert.equal(svg.children[0].textContent, "turns by model");
});

test("the top of the scale rounds up to 1, 2 or 5 times a power of ten, with k and M labels", () => {
  const top = (values) => yTicks(chart({ kind: "bar", x: "k", y: "v", columns: ["k", "v"], rows: values.map((v, i) => [`k${i}`, v]) }).svg).at(-1);
  assert.equal(top([530, 120]), "1.0k");
  assert.equal(top([1500]), "2.0k");
  assert.equal(top([41]), "50");
  assert.equal(top([2100000]), "5.0M");
  assert.equal(top([0.3, 0.05]), "0.50");
  assert.equal(top([0, 0]), "1"); // nothing used: a 0..1 scale, not a division by zero
  assert.deepEqual(yTicks(chart({ kind: "bar", x: "k", y: "v", columns: ["k", "v"], rows: [["a", 530]] }).svg), ["0", "250", "500", "750", "1.0k"]);
});

test("category labels come from the page's label map and are shortened", () => {
  const { svg } = chart({
    kind: "bar", x: "model", y: "tokens", columns: ["model", "tokens"],
    rows: [["m-1", 10], ["m-2", 20]],
    labels: { "m-1": "Claude 3.5 Sonnet (Bedrock, eu-west-1)" },
  });
  const categories = svg.querySelectorAll(".tick").filter((t) => t.getAttribute("transform"));
  assert.deepEqual(categories.map((t) => t.textContent), ["Claude 3.5 Sonnet (Bed", "m-2"]);
  assert.equal(svg.querySelector(".bar").querySelector("title").textContent, "Claude 3.5 Sonnet (Bedrock, eu-west-1): 10");
});

test("lines: one polyline per series, colours and legend in first-seen order", () => {
  const { svg } = chart({
    kind: "line", x: "day", y: "tokens", series: "model", columns: ["day", "model", "tokens"],
    rows: [["2026-01-01", "a", 10], ["2026-01-01", "b", 15], ["2026-01-02", "a", 20], ["2026-01-02", "b", 5]],
    labels: { a: "Model A" },
  });
  const lines = svg.querySelectorAll(".series");
  assert.deepEqual(lines.map((l) => l.getAttribute("data-series")), ["a", "b"]);
  assert.notEqual(lines[0].getAttribute("stroke"), lines[1].getAttribute("stroke"));
  assert.deepEqual(svg.querySelectorAll(".legend").map((l) => l.textContent), ["Model A", "b"]);
  // x runs from the left margin to the right one; y is scaled to the top of 20.
  const points = lines[0].getAttribute("points").split(" ").map((p) => p.split(",").map(Number));
  assert.deepEqual(points, [[72, 16 + PLOT_H / 2], [860 - 16, 16]]);
  assert.equal(svg.querySelectorAll("circle").length, 4);
});

test("a day axis shows missing days, and a missing day breaks the line", () => {
  const { svg } = chart({
    kind: "line", x: "day", y: "turns", columns: ["day", "turns"],
    rows: [["2026-01-04", 2], ["2026-01-01", 1], ["2026-01-02", 3]],
  });
  assert.deepEqual(ticks(svg).filter((t) => t.startsWith("2026")), ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]);
  assert.deepEqual(svg.querySelectorAll(".series").map((l) => l.getAttribute("points").split(" ").length), [2, 1]);
});

test("weekly points are joined: a series' own step is not a gap", () => {
  const { svg } = chart({
    kind: "line", x: "week", y: "turns", columns: ["week", "turns"],
    rows: [["2026-01-05", 1], ["2026-01-12", 2], ["2026-01-19", 3], ["2026-02-02", 4]],
  });
  assert.deepEqual(svg.querySelectorAll(".series").map((l) => l.getAttribute("points").split(" ").length), [3, 1]);
});

test("a long axis labels at most about 14 dates", () => {
  const rows = Array.from({ length: 60 }, (_, i) => [new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10), i]);
  const { svg } = chart({ kind: "line", x: "day", y: "turns", columns: ["day", "turns"], rows });
  const dates = ticks(svg).filter((t) => t.startsWith("2026"));
  assert.equal(dates.length, 12);
  assert.equal(dates[0], "2026-01-01");
});

test("nothing to chart: a sentence instead of an empty drawing", () => {
  const empty = chart({ kind: "bar", x: "model", y: "turns", columns: ["model", "turns"], rows: [] });
  assert.equal(empty.svg, null);
  assert.equal(empty.container.textContent, "Nothing to chart (columns model / turns).");
  const wrong = chart({ kind: "bar", x: "model", y: "cost", columns: ["model", "turns"], rows: [["a", 1]] });
  assert.equal(wrong.svg, null);
});

test("on page load it draws the JSON embedded in #chart-data into #chart", () => {
  const { document } = page();
  const container = document.createElement("div");
  container.id = "chart";
  const source = document.createElement("script");
  source.id = "chart-data";
  source.textContent = JSON.stringify({ kind: "bar", x: "m", y: "n", columns: ["m", "n"], rows: [["<b>x</b>", 1]] });
  document.body.append(container, source);
  document.dispatch("DOMContentLoaded");
  const svg = container.querySelector("svg");
  assert.equal(svg.namespaceURI, "http://www.w3.org/2000/svg");
  assert.match(html(svg), /&lt;b&gt;x&lt;\/b&gt;/);
  assert.equal(svg.querySelectorAll("b").length, 0);
});
