/* While a run is queued or running, poll its status and show progress; reload when it ends. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var state = document.getElementById("run-state");
    if (!state || state.dataset.finished === "true") return;
    var url = state.dataset.statusUrl, delay = 1000;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (run) {
          var bar = document.getElementById("run-progress"), label = document.getElementById("run-status");
          if (bar) bar.value = run.progress;
          if (label) { label.textContent = run.status; label.className = "status status-" + run.status; }
          if (run.finished) { window.location.reload(); return; }
          delay = Math.min(delay * 1.5, 5000);
          window.setTimeout(poll, delay);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, delay);
  });
})();
