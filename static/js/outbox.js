/* Live message statuses for the outbox list and a message's page.
 *
 * Every badge marked data-status-for="<id>" data-final="false" is refreshed from the JSON
 * endpoint named by the nearest [data-status-url] (GET ?ids=1,2,3, at most 100 ids, answers only
 * for the current team). Polling runs while some shown message is not final and the tab is
 * visible; it stops for good once every message is final. Changes are announced once through a
 * polite live region, not badge by badge. Without JavaScript the page simply shows the status
 * it was rendered with.
 */
(function () {
  "use strict";

  var INTERVAL = 4000; // ms between polls while all is well
  var MAX_INTERVAL = 60000; // back-off ceiling after errors
  var BATCH = 100; // the endpoint's limit

  var source = document.querySelector("[data-status-url]");
  if (!source || !window.fetch) return;
  var url = source.getAttribute("data-status-url");
  var announcer = document.querySelector("[data-outbox-announcer]");
  var delay = INTERVAL;
  var timer = null;
  var inFlight = false;

  function pendingBadges() {
    return Array.prototype.slice.call(
      document.querySelectorAll('[data-status-for][data-final="false"]')
    );
  }

  function announce(lines) {
    if (!announcer || !lines.length) return;
    announcer.textContent = lines.join(". ") + ".";
  }

  function apply(item, changes) {
    var badges = document.querySelectorAll('[data-status-for="' + item.id + '"]');
    Array.prototype.forEach.call(badges, function (badge) {
      if (badge.textContent.trim() === item.label && badge.className === item.badge) return;
      badge.textContent = item.label;
      badge.className = item.badge;
      badge.setAttribute("data-final", item.final ? "true" : "false");
      var who = badge.getAttribute("data-number");
      changes.push((who ? "Message to " + who : "This message") + " is now " + item.label);
      if (badge.hasAttribute("data-reload-hint")) {
        var notice = document.querySelector("[data-reload-notice]");
        if (notice) notice.hidden = false;
      }
    });
    if (item.final) {
      // A final status never changes again: stop asking about it.
      Array.prototype.forEach.call(badges, function (badge) {
        badge.setAttribute("data-final", "true");
      });
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (document.hidden || !pendingBadges().length) return;
    timer = setTimeout(poll, delay);
  }

  function poll() {
    timer = null;
    if (inFlight || document.hidden) return;
    var ids = [];
    pendingBadges().forEach(function (badge) {
      var id = badge.getAttribute("data-status-for");
      if (ids.indexOf(id) === -1) ids.push(id);
    });
    if (!ids.length) return;
    var requests = [];
    for (var i = 0; i < ids.length; i += BATCH) {
      var query = "?ids=" + encodeURIComponent(ids.slice(i, i + BATCH).join(","));
      requests.push(
        fetch(url + query, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        }).then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
      );
    }
    inFlight = true;
    Promise.all(requests)
      .then(function (answers) {
        var changes = [];
        var answered = {};
        answers.forEach(function (answer) {
          (answer.messages || []).forEach(function (item) {
            answered[item.id] = true;
            apply(item, changes);
          });
        });
        // An id the server left out is not ours to follow (another team, or deleted).
        ids.forEach(function (id) {
          if (!answered[id]) {
            Array.prototype.forEach.call(
              document.querySelectorAll('[data-status-for="' + id + '"]'),
              function (badge) { badge.setAttribute("data-final", "true"); }
            );
          }
        });
        announce(changes);
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
