// Scheduled sends are written in the person's own time zone: the browser names it in the
// form's hidden time_zone field (the server falls back to the team's zone without it).
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }
  if (!zone) return;
  document.querySelectorAll('input[name="time_zone"]:not([data-fixed-zone])').forEach(function (input) {
    if (!input.value) input.value = zone;
  });
  document.querySelectorAll("[data-time-zone-name]").forEach(function (span) {
    span.textContent = " (" + zone + ")";
  });
})();
