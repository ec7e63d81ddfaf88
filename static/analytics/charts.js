/* Report charts drawn as plain SVG: lines over time (one per series) or bars by category.
   Reads the JSON the page embeds in #chart-data: {kind, x, y, series, columns, rows, labels}. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = ["#2f6fed", "#e2a100", "#2e9d5b", "#d92d20", "#7a5af8", "#0ba5ec", "#ee46bc", "#667085"];
  var W = 860, H = 320, M = { top: 16, right: 16, bottom: 64, left: 72 };
  // Django's JavaScript catalogue (/jsi18n/, loaded by the page) translates; without it, English.
  var _ = window.gettext || function (text) { return text; };
  var fill = window.interpolate || function (text, values) {
    return text.replace(/%\((\w+)\)s/g, function (whole, name) { return values[name]; });
  };

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value, integers) {
    if (value <= 0) return 1;
    // Small counts: a top that splits into whole-number ticks (0, 1, 2, ... not 1.25).
    if (integers && value <= 20) return Math.max(4, Math.ceil(value / 4) * 4);
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var scaled = value / step;
    return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * step;
  }

  function fmt(value) {
    if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (Math.abs(value) >= 1e3) return (value / 1e3).toFixed(1) + "k";
    return Math.abs(value) < 1 && value !== 0 ? value.toFixed(2) : String(Math.round(value * 100) / 100);
  }

  function frame(svg, maxY, yLabel) {
    var plotH = H - M.top - M.bottom;
    for (var i = 0; i <= 4; i++) {
      var y = M.top + plotH - (plotH * i) / 4;
      svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: M.left - 8, y: y + 4, "text-anchor": "end", class: "tick" }, fmt((maxY * i) / 4)));
    }
    svg.appendChild(el("text", { x: 14, y: M.top + plotH / 2, transform: "rotate(-90 14 " + (M.top + plotH / 2) + ")", "text-anchor": "middle", class: "axis-label" }, yLabel));
  }

  function label(data, value) {
    return (data.labels && data.labels[value]) || String(value);
  }

  function drawBars(svg, data, xi, yi) {
    var rows = data.rows;
    var values = rows.map(function (r) { return Number(r[yi]) || 0; });
    var maxY = niceMax(Math.max.apply(null, values), values.every(Number.isInteger));
    frame(svg, maxY, data.y);
    var plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
    var band = plotW / rows.length, barW = Math.min(90, Math.max(2, band * 0.7));
    rows.forEach(function (row, i) {
      var value = Number(row[yi]) || 0, h = (plotH * value) / maxY;
      var x = M.left + band * i + (band - barW) / 2;
      var bar = el("rect", { x: x, y: M.top + plotH - h, width: barW, height: h, fill: COLORS[0], class: "bar" });
      bar.appendChild(el("title", {}, label(data, row[xi]) + ": " + value));
      svg.appendChild(bar);
      if (rows.length <= 30) {
        svg.appendChild(el("text", { x: x + barW / 2, y: M.top + plotH - h - 4, "text-anchor": "middle", class: "value" }, fmt(value)));
      }
      var tx = x + barW / 2, ty = H - M.bottom + 14;
      svg.appendChild(el("text", { x: tx, y: ty, "text-anchor": "end", transform: "rotate(-30 " + tx + " " + ty + ")", class: "tick" }, label(data, row[xi]).slice(0, 22)));
    });
  }

  var ISO_DAY = /^\d{4}-\d{2}-\d{2}$/, DAY_MS = 86400000;

  function everyDay(first, last) {
    var days = [], t = Date.parse(first + "T00:00:00Z"), end = Date.parse(last + "T00:00:00Z");
    for (; t <= end; t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
    return days;
  }

  // The runs of a series' points to join with a line. On a day axis a series' own step is its
  // smallest spacing (1 day, 7 for weeks, ~30 for months); a wider distance is a gap.
  function segments(xs, seriesPoints, dated) {
    var present = [];
    xs.forEach(function (x, i) { if (x in seriesPoints) present.push(i); });
    if (!dated) return [present];
    var step = Infinity;
    for (var j = 1; j < present.length; j++) step = Math.min(step, present[j] - present[j - 1]);
    var runs = [], run = [];
    present.forEach(function (i, j) {
      if (j > 0 && i - present[j - 1] > step * 1.5) { runs.push(run); run = []; }
      run.push(i);
    });
    if (run.length) runs.push(run);
    return runs;
  }

  function drawLines(svg, data, xi, yi) {
    var si = data.series ? data.columns.indexOf(data.series) : -1;
    var xs = [], seriesNames = [], points = {};
    data.rows.forEach(function (row) {
      var x = String(row[xi]), s = si >= 0 ? String(row[si]) : data.y;
      if (xs.indexOf(x) < 0) xs.push(x);
      if (seriesNames.indexOf(s) < 0) seriesNames.push(s);
      (points[s] = points[s] || {})[x] = Number(row[yi]) || 0;
    });
    xs.sort();
    // Days without rows are days without turns: put every calendar day on the axis, so a gap
    // shows as a gap instead of neighbours being joined as if they were consecutive.
    var dated = xs.length > 1 && xs.every(function (x) { return ISO_DAY.test(x); });
    if (dated) xs = everyDay(xs[0], xs[xs.length - 1]);
    var values = data.rows.map(function (r) { return Number(r[yi]) || 0; });
    var maxY = niceMax(Math.max.apply(null, values), values.every(Number.isInteger));
    frame(svg, maxY, data.y);
    var plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
    var xAt = function (i) { return M.left + (xs.length === 1 ? plotW / 2 : (plotW * i) / (xs.length - 1)); };
    var yAt = function (v) { return M.top + plotH - (plotH * v) / maxY; };
    xs.forEach(function (x, i) {
      if (xs.length <= 14 || i % Math.ceil(xs.length / 14) === 0) {
        var anchor = xs.length > 1 && i === 0 ? "start" : xs.length > 1 && i === xs.length - 1 ? "end" : "middle";
        svg.appendChild(el("text", { x: xAt(i), y: H - M.bottom + 18, "text-anchor": anchor, class: "tick" }, x));
      }
    });
    seriesNames.forEach(function (s, k) {
      var color = COLORS[k % COLORS.length];
      segments(xs, points[s], dated).forEach(function (run) {
        var coords = run.map(function (i) { return xAt(i) + "," + yAt(points[s][xs[i]]); });
        svg.appendChild(el("polyline", { points: coords.join(" "), fill: "none", stroke: color, "stroke-width": 2, class: "series", "data-series": s }));
      });
      xs.forEach(function (x, i) {
        if (!(x in points[s])) return;
        var dot = el("circle", { cx: xAt(i), cy: yAt(points[s][x]), r: 3, fill: color });
        dot.appendChild(el("title", {}, s + " · " + x + ": " + points[s][x]));
        svg.appendChild(dot);
      });
      var perRow = 3, ly = H - 22 + Math.floor(k / perRow) * 16, lx = M.left + (k % perRow) * 260;
      svg.appendChild(el("rect", { x: lx, y: ly - 9, width: 10, height: 10, fill: color }));
      svg.appendChild(el("text", { x: lx + 14, y: ly, class: "legend" }, label(data, s).slice(0, 38)));
    });
  }

  function draw(container, data) {
    var xi = data.columns.indexOf(data.x), yi = data.columns.indexOf(data.y);
    if (xi < 0 || yi < 0 || !data.rows.length) {
      container.textContent = fill(_("Nothing to chart (columns %(x)s / %(y)s)."), { x: data.x, y: data.y }, true);
      return null;
    }
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "report-chart chart-" + data.kind });
    svg.appendChild(el("title", {}, fill(_("%(y)s by %(x)s"), { x: data.x, y: data.y }, true)));
    (data.kind === "line" ? drawLines : drawBars)(svg, data, xi, yi);
    container.appendChild(svg);
    return svg;
  }

  window.reportChartDraw = draw;
  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("chart"), source = document.getElementById("chart-data");
    if (container && source) draw(container, JSON.parse(source.textContent));
  });
})();
