// A campaign's progress: polls its counts until it has ended; reloads once when its state
// changes, so the buttons match it.
(function () {
  "use strict";
  var box = document.getElementById("campaign-progress");
  if (!box || box.dataset.finished === "1") return;
  var url = box.dataset.progressUrl;
  var shown = null;
  function set(name, value) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (!el) return;
    if (name === "bar") { el.value = value; el.textContent = value + "%"; return; }
    el.textContent = typeof value === "number" ? value.toLocaleString() : (value || "");
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if (shown === null) shown = p.status;
        set("bar", p.percent);
        ["status_label", "waiting", "queued", "sent", "delivered", "failed", "replied", "canceled", "skipped", "stop_reason", "stop_fix"].forEach(function (k) { set(k, p[k]); });
        set("eta", p.eta ? "About " + p.eta + " left." : "");
        box.querySelector('[data-field="stop"]').hidden = !p.stop_reason;
        if (p.status !== shown) { window.location.reload(); return; }
        if (p.finished) return;
        window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
