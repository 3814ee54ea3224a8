// "Add from contacts" on the compose page: suggestions from /contacts/search.json; choosing
// one adds the number (or `tag:NAME`) to the recipients field, on a line of its own, and lets
// the page's other script check the field again.
(function () {
  "use strict";
  var picker = document.querySelector("[data-contact-search]");
  var field = document.getElementById("id_to");
  if (!picker || !field) return;
  picker.hidden = false;
  var input = picker.querySelector("input");
  var list = picker.querySelector("ul");
  var url = picker.dataset.contactSearch;
  var timer = null;
  var asked = 0;

  function add(value) {
    var text = field.value.replace(/[\s,;]+$/, "");
    field.value = (text ? text + "\n" : "") + value;
    field.dispatchEvent(new Event("input", { bubbles: true }));
    input.value = "";
    list.innerHTML = "";
    input.focus();
  }

  function show(results) {
    list.innerHTML = "";
    results.forEach(function (r) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button-secondary contact-picker-choice";
      button.dataset.value = r.value;
      button.dataset.kind = r.kind;
      button.textContent = r.label;
      button.addEventListener("click", function () { add(r.value); });
      item.appendChild(button);
      list.appendChild(item);
    });
    if (!results.length && input.value.trim()) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = "No contact or tag matches.";
      list.appendChild(none);
    }
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    var term = input.value.trim();
    if (!term) { list.innerHTML = ""; return; }
    timer = window.setTimeout(function () {
      var mine = ++asked;
      fetch(url + "?q=" + encodeURIComponent(term), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { if (mine === asked) show(data.results || []); })
        .catch(function () {});
    }, 200);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      var first = list.querySelector("button");
      if (first) first.click();
    }
  });
})();
