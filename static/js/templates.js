// The template editor's preview: the text merged with the chosen contact and its length in
// SMS segments, as the server counts them (POST /templates/preview/), while the text is typed.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  var previewForm = document.getElementById("template-preview-form");
  var contact = document.getElementById("preview-contact");
  var output = document.getElementById("preview-text");
  var length = document.getElementById("preview-length");
  if (!previewForm || !output) return;
  var text = form ? form.querySelector("textarea[name=text]") : null;
  var fallback = form ? form.querySelector("input[name=fallback]") : null;
  var initialText = output.textContent;
  var timer = null;
  var token = previewForm.querySelector("input[name=csrfmiddlewaretoken]").value;

  function refresh() {
    var body = new FormData();
    body.append("text", text ? text.value : initialText);
    body.append("contact", contact ? contact.value : "");
    body.append("fallback", fallback ? fallback.value : "");
    fetch(previewForm.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": token },
    })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data.ok) {
          length.textContent = data.error || "The preview is not available.";
          return;
        }
        output.textContent = data.text;
        var parts = [
          data.units + " UTF-16 units",
          data.encoding,
          data.segments + " SMS segment" + (data.segments === 1 ? "" : "s"),
        ];
        var notes = [];
        if (data.missing.length) notes.push("No value for: " + data.missing.map(function (m) { return "{" + m + "}"; }).join(", ") + ".");
        if (data.unknown) notes.push(data.unknown);
        length.textContent = "Length: " + parts.join(" · ") + ". " + notes.join(" ");
      })
      .catch(function () { length.textContent = "The preview is not available right now."; });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  if (text) text.addEventListener("input", soon);
  if (fallback) fallback.addEventListener("input", soon);
  if (contact) contact.addEventListener("change", refresh);
  refresh();
})();
