/* While a run is queued or running, poll its status and show progress (queued → running →
   succeeded/failed); when it ends, reload to show the result. Every word shown comes from the
   server in the analyst's language (status_label, phase). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var state = document.getElementById("run-state");
    if (!state || state.dataset.finished === "true") return;
    var url = state.dataset.statusUrl, delay = 500;
    function show(run) {
      var bar = document.getElementById("run-progress"),
        label = document.getElementById("run-status"),
        phase = document.getElementById("run-phase");
      if (bar) bar.value = run.progress;
      if (label) { label.textContent = run.status_label; label.className = "status status-" + run.status; }
      if (phase) phase.textContent = run.phase;
      state.dataset.status = run.status;
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (run) {
          show(run);
          if (run.finished) { window.location.reload(); return; }
          delay = Math.min(delay * 1.5, 3000);
          window.setTimeout(poll, delay);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, delay);
  });
})();
