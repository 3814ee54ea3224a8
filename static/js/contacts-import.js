// The import's progress bar: polls the job's progress until it is finished, then reloads
// once so the rows with problems are listed.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.dataset.finished === "1") return;
  var url = box.dataset.progressUrl;
  function set(name, value) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (!el) return;
    if (name === "bar") { el.value = value; el.textContent = value + "%"; return; }
    el.textContent = typeof value === "number" ? value.toLocaleString() : (value === null ? "…" : value);
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        set("bar", p.percent);
        ["status_label", "position", "total", "created", "updated", "merged", "refused", "opted_out"].forEach(function (k) { set(k, p[k]); });
        if (p.finished) { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
