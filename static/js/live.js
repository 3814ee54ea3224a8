/* A part of a page that follows what it shows, without a reload.
 *
 * The element marked data-live-url holds the part; data-live-version names what it shows.
 * While data-live-final is "false" and the tab is visible, the URL is asked every few seconds
 * with ?version=…; the server answers {"changed": false}, or {"changed": true, "version",
 * "final", "label", "html"} and the part is replaced whole, so everything in it (explanation,
 * progress, recipients, timeline, the actions offered) changes together. A new status is
 * announced once through the polite live region marked data-live-announcer. Without
 * JavaScript the page shows what it was rendered with.
 */
(function () {
  "use strict";

  var INTERVAL = 3000; // ms between polls while all is well
  var MAX_INTERVAL = 60000; // back-off ceiling after errors

  var region = document.querySelector("[data-live-url]");
  if (!region || !window.fetch) return;
  var url = region.getAttribute("data-live-url");
  var announcer = document.querySelector("[data-live-announcer]");
  var delay = INTERVAL;
  var timer = null;
  var inFlight = false;

  function isFinal() {
    return region.getAttribute("data-live-final") === "true";
  }

  function label() {
    var badge = region.querySelector("[data-status-label]");
    return badge ? badge.textContent.trim() : "";
  }

  function replace(answer) {
    // Keep the keyboard where it was: the element with the same id, if it is still there.
    var focused = document.activeElement;
    var focusedId = focused && region.contains(focused) ? focused.id : "";
    var before = label();
    region.innerHTML = answer.html;
    region.setAttribute("data-live-version", answer.version);
    region.setAttribute("data-live-final", answer.final ? "true" : "false");
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
    }
    if (announcer && answer.label && answer.label !== before) {
      announcer.textContent = "This message is now " + answer.label + ".";
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (document.hidden || isFinal()) return;
    timer = setTimeout(poll, delay);
  }

  function poll() {
    timer = null;
    if (inFlight || document.hidden || isFinal()) return;
    inFlight = true;
    var version = region.getAttribute("data-live-version") || "";
    fetch(url + "?version=" + encodeURIComponent(version), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (answer) {
        if (answer.changed) replace(answer);
        delay = INTERVAL;
      })
      .catch(function () {
        delay = Math.min(delay * 2, MAX_INTERVAL);
      })
      .then(function () {
        inFlight = false;
        schedule();
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else if (!inFlight) {
      // Back in view: catch up at once rather than after a full interval.
      delay = INTERVAL;
      poll();
    }
  });

  schedule();
})();
