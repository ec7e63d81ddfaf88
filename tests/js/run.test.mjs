// static/analytics/run.js: a queued or running report run polls its status URL, shows the
// progress, slows its polling down, and reloads the page once the run has finished.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import vm from "node:vm";

import { installClock } from "./clock.mjs";
import { createDocument } from "./fake-dom.mjs";
import { STATIC } from "./load.mjs";

const SOURCE = readFileSync(join(STATIC, "analytics/run.js"), "utf8");

function runPage({ finished, answers }) {
  const document = createDocument();
  const state = document.createElement("div");
  state.id = "run-state";
  state.dataset.finished = String(finished);
  state.dataset.statusUrl = "/analytics/runs/7/status";
  const bar = document.createElement("progress");
  bar.id = "run-progress";
  const label = document.createElement("span");
  label.id = "run-status";
  const phase = document.createElement("span");
  phase.id = "run-phase";
  document.body.append(state, bar, label, phase);
  const clock = installClock();
  const polls = [];
  const window = { setTimeout: (fn, ms) => setTimeout(fn, ms), reloads: 0, location: { reload() { window.reloads += 1; } } };
  const fetch = async (url) => {
    polls.push({ url, at: clock.now });
    const answer = answers.shift();
    if (answer instanceof Error) throw answer;
    return { json: async () => answer };
  };
  vm.runInNewContext(SOURCE, { window, document, fetch }, { filename: "run.js" });
  document.dispatch("DOMContentLoaded");
  return { clock, polls, window, bar, label, phase, state };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

async function advance(clock, ms) {
  clock.tick(ms);
  await settle();
}

test("polls with a growing delay, shows the server's words and progress, reloads when finished", async () => {
  const page = runPage({
    finished: false,
    answers: [
      { status: "running", status_label: "실행 중", phase: "Reading the lake", progress: 10, finished: false },
      new TypeError("offline"),
      { status: "running", status_label: "실행 중", phase: "Writing the result", progress: 60, finished: false },
      { status: "succeeded", status_label: "성공", phase: "", progress: 100, finished: true },
    ],
  });
  try {
    await advance(page.clock, 500);
    assert.equal(page.bar.value, 10);
    assert.equal(page.label.textContent, "실행 중"); // the server's label, in the analyst's language
    assert.equal(page.label.className, "status status-running");
    assert.equal(page.phase.textContent, "Reading the lake");
    assert.equal(page.state.dataset.status, "running");
    await advance(page.clock, 750); // 0.5 s grown by half
    await advance(page.clock, 5000); // after a failed poll: 5 s
    assert.equal(page.bar.value, 60);
    assert.equal(page.phase.textContent, "Writing the result");
    await advance(page.clock, 1125);
    assert.deepEqual(page.polls.map((p) => p.at), [500, 1250, 6250, 7375]);
    assert.equal(page.polls[0].url, "/analytics/runs/7/status");
    assert.equal(page.label.textContent, "성공");
    assert.equal(page.window.reloads, 1);
    await advance(page.clock, 60000);
    assert.equal(page.polls.length, 4);
  } finally {
    page.clock.uninstall();
  }
});

test("a finished run does not poll", async () => {
  const page = runPage({ finished: true, answers: [] });
  try {
    await advance(page.clock, 60000);
    assert.deepEqual(page.polls, []);
  } finally {
    page.clock.uninstall();
  }
});
