/* The inbox follows what happens without a reload.
 *
 * The list (element with data-inbox-live) and a thread (data-thread-live) are asked every few
 * seconds, while the tab is visible, whether anything changed since their data-version; when
 * it did, the server sends the part again and it is replaced whole. The reply and note boxes
 * sit outside the replaced part, so what is being typed is never lost. New messages are
 * announced once through the polite live region (data-inbox-announcer), and the navigation's
 * unread badge (data-inbox-badge) follows the list. Without JavaScript the pages show what
 * they were rendered with and a reload brings the rest.
 */
(function () {
  "use strict";

  var INTERVAL = 3000;
  var MAX_INTERVAL = 60000;

  var region = document.querySelector("[data-inbox-live], [data-thread-live]");
  if (!region || !window.fetch) return;
  var isThread = region.hasAttribute("data-thread-live");
  var url = region.getAttribute(isThread ? "data-thread-live" : "data-inbox-live");
  var announcer = document.querySelector("[data-inbox-announcer]");
  var badge = document.querySelector("[data-inbox-badge]");
  var delay = INTERVAL;
  var timer = null;
  var inFlight = false;

  function count(selector) {
    return region.querySelectorAll(selector).length;
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 200;
  }

  function setBadge(unread) {
    if (!badge || typeof unread !== "number") return;
    badge.hidden = unread === 0;
    badge.textContent = unread ? String(unread) : "";
  }

  function replace(answer) {
    var before = isThread ? count(".inbox-inbound") : count(".inbox-unread");
    var follow = isThread && nearBottom();
    var focused = document.activeElement;
    var focusedId = focused && region.contains(focused) ? focused.id : "";
    region.innerHTML = answer.html;
    region.setAttribute("data-version", answer.version);
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
    }
    var after = isThread ? count(".inbox-inbound") : count(".inbox-unread");
    if (announcer && after > before) {
      announcer.textContent = isThread ? "New message in this conversation." : "New messages in the inbox.";
    }
    if (follow) {
      var last = region.querySelector(".inbox-thread > li:last-child");
      if (last) last.scrollIntoView({ block: "end" });
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (document.hidden) return;
    timer = setTimeout(poll, delay);
  }

  function poll() {
    timer = null;
    if (inFlight || document.hidden) return;
    inFlight = true;
    var version = region.getAttribute("data-version") || "";
    var separator = url.indexOf("?") === -1 ? "?" : "&";
    fetch(url + separator + "version=" + encodeURIComponent(version), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (answer) {
        if (answer.changed) replace(answer);
        setBadge(answer.unread);
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
      delay = INTERVAL;
      poll();
    }
  });

  schedule();
})();
