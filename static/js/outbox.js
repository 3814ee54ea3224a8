/* The outbox list, live: statuses of the rows shown, and new messages as they are written.
 *
 * Every badge marked data-status-for="<id>" data-final="false" is refreshed from the JSON
 * endpoint named by the table's data-status-url (GET ?ids=1,2,3, at most 100 ids, answers only
 * for the current team). On the newest page the table also carries data-live-list (the same
 * endpoint with the folder and search shown) and data-live-top (the cursor of its top row): the
 * answer then holds the rows written since, from this tab, other tabs or teammates, which are
 * put on top, and the folder counts of the search shown. Changes are announced once through a
 * polite live region, not badge by badge. Without JavaScript the page shows what it was
 * rendered with.
 */
(function () {
  "use strict";

  var INTERVAL = 4000; // ms between polls while some message shown is on its way
  var IDLE_INTERVAL = 6000; // ms between polls on the newest page when all shown are final
  var MAX_INTERVAL = 60000; // back-off ceiling after errors
  var BATCH = 100; // the endpoint's limit

  var table = document.querySelector("[data-status-url]");
  if (!table || !window.fetch) return;
  var statusUrl = table.getAttribute("data-status-url");
  var listUrl = table.getAttribute("data-live-list");
  var body = table.querySelector("tbody");
  var announcer = document.querySelector("[data-outbox-announcer]");
  var failures = 0;
  var timer = null;
  var inFlight = false;

  function pendingIds() {
    var ids = [];
    document.querySelectorAll('[data-status-for][data-final="false"]').forEach(function (badge) {
      var id = badge.getAttribute("data-status-for");
      if (ids.indexOf(id) === -1) ids.push(id);
    });
    return ids;
  }

  function announce(lines) {
    if (!announcer || !lines.length) return;
    announcer.textContent = lines.join(". ") + ".";
  }

  function applyStatus(item, changes) {
    var badges = document.querySelectorAll('[data-status-for="' + item.id + '"]');
    Array.prototype.forEach.call(badges, function (badge) {
      if (badge.textContent.trim() === item.label && badge.className === item.badge) return;
      badge.textContent = item.label;
      badge.className = item.badge;
      var who = badge.getAttribute("data-number");
      changes.push((who ? "Message to " + who : "This message") + " is now " + item.label);
    });
    // A final status never changes again: stop asking about it.
    Array.prototype.forEach.call(badges, function (badge) {
      badge.setAttribute("data-final", item.final ? "true" : "false");
    });
  }

  function addRows(html, added, changes) {
    if (!html || !body) return;
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    var rows = Array.prototype.slice.call(holder.children);
    // Newest first, above the rows already shown; a row already there is never added twice.
    rows.reverse().forEach(function (row) {
      var badge = row.querySelector("[data-status-for]");
      var id = badge && badge.getAttribute("data-status-for");
      if (id && body.querySelector('[data-status-for="' + id + '"]')) return;
      body.insertBefore(row, body.firstChild);
    });
    var wrap = document.querySelector("[data-outbox-table]");
    if (wrap) wrap.hidden = false;
    var empty = document.querySelector("[data-outbox-empty]");
    if (empty) empty.hidden = true;
    changes.push(added === 1 ? "1 new message" : added + " new messages");
  }

  function applyCounts(counts) {
    Object.keys(counts || {}).forEach(function (key) {
      var count = document.querySelector('[data-count-for="' + key + '"]');
      if (count && count.textContent !== counts[key]) count.textContent = counts[key];
    });
  }

  function nextDelay() {
    if (failures) return Math.min(INTERVAL * Math.pow(2, failures), MAX_INTERVAL);
    return pendingIds().length ? INTERVAL : IDLE_INTERVAL;
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (document.hidden) return;
    // Older pages only follow the statuses they show, and stop once all are final.
    if (!listUrl && !pendingIds().length) return;
    timer = setTimeout(poll, nextDelay());
  }

  function request(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      });
  }

  function poll() {
    timer = null;
    if (inFlight || document.hidden) return;
    var ids = pendingIds();
    var requests = [];
    // The first request also asks for new rows (on the newest page); further ones, for pages
    // with more pending messages than one request may name, only for statuses.
    for (var i = 0; i < Math.max(ids.length, 1); i += BATCH) {
      var query = "ids=" + encodeURIComponent(ids.slice(i, i + BATCH).join(","));
      if (i === 0 && listUrl) {
        var top = table.getAttribute("data-live-top") || "";
        requests.push(request(listUrl + "&top=" + encodeURIComponent(top) + "&" + query));
      } else if (ids.length) {
        requests.push(request(statusUrl + "?" + query));
      }
    }
    if (!requests.length) return;
    inFlight = true;
    Promise.all(requests)
      .then(function (answers) {
        var changes = [];
        var answered = {};
        answers.forEach(function (answer) {
          (answer.messages || []).forEach(function (item) {
            answered[item.id] = true;
            applyStatus(item, changes);
          });
          if (answer.added) addRows(answer.rows, answer.added, changes);
          if (answer.top !== undefined) table.setAttribute("data-live-top", answer.top);
          if (answer.counts) applyCounts(answer.counts);
        });
        // An id the server left out is not ours to follow (another team, or deleted).
        ids.forEach(function (id) {
          if (answered[id]) return;
          document.querySelectorAll('[data-status-for="' + id + '"]').forEach(function (badge) {
            badge.setAttribute("data-final", "true");
          });
        });
        announce(changes);
        failures = 0;
      })
      .catch(function () {
        failures += 1;
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
      failures = 0;
      poll();
    }
  });

  schedule();
})();
