/* The compose page, enhanced. Without this script the form works as a plain multipart POST.
 *
 * With it:
 *  - each chosen or dropped file is uploaded at once to the upload endpoint (one request per
 *    file, with a progress bar, then "checking…" while the server checks it) and comes back
 *    checked and normalised as a draft; the form then sends only the drafts' ids, so pressing
 *    "Queue message" never waits for uploads;
 *  - a live meter shows "n of 10 files · x of 1.5 MB" and a counter the text's length as
 *    RingCentral counts it (UTF-16 code units, which is what a JavaScript string's length is);
 *  - the server's own verdict on the fields comes from the check endpoint while the user types,
 *    so the messages shown here are the ones the server would give on submit.
 *
 * Limits come from messaging/ringcentral/limits.py through the #mms-limits JSON; none is written here.
 * Messages computed locally (text length, file count and size) use limits.py's wording.
 */
(function () {
  "use strict";

  var form = document.getElementById("compose-form");
  if (!form || !window.FormData || !window.XMLHttpRequest || !window.fetch) return;

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  var LIMITS = readJson("mms-limits");
  var CONFIG = readJson("compose-config");
  var initialDrafts = readJson("compose-drafts") || [];
  if (!LIMITS || !CONFIG) return;

  var csrfInput = form.querySelector("input[name=csrfmiddlewaretoken]");
  var textArea = form.querySelector("textarea[name=text]");
  var toArea = form.querySelector("textarea[name=to]");
  var senderSelect = form.querySelector("select[name=sender]");
  var fileInput = form.querySelector("input[type=file][name=attachments]");
  var fitBox = form.querySelector("input[name=fit_images]");
  var dropzone = document.getElementById("dropzone");
  var list = document.getElementById("attachment-list");
  var meter = document.getElementById("attachment-meter");
  var meterBar = document.getElementById("attachment-meter-bar");
  var counter = document.getElementById("text-counter");
  var preview = document.getElementById("recipients-preview");
  var status = document.getElementById("compose-status");
  var submitButton = document.getElementById("compose-submit");

  var items = []; // {key, file, name, size, originalSize, fittable, state, error, info, xhr, node}
  var touched = {};
  var serverErrors = {};
  var checkSeq = 0;
  var checkTimer = null;
  var nextKey = 1;

  // --- Formatting, as messaging/ringcentral/limits.py does it ---------------------------------------------

  function grouped(n) {
    return Number(n).toLocaleString("en-US");
  }

  function plural(count, word) {
    return grouped(count) + " " + (count === 1 ? word : word + "s");
  }

  function formatSize(bytes, roundUp) {
    if (bytes < 1000) return bytes === 1 ? "1 byte" : grouped(bytes) + " bytes";
    var unit = "kB";
    var value = bytes / 1000;
    if (bytes >= 999500) {
      unit = "MB";
      value = bytes / LIMITS.bytesPerMB;
    }
    var decimals = value < 10 ? 2 : value < 100 ? 1 : 0;
    if (roundUp) value = Math.ceil(value * Math.pow(10, decimals)) / Math.pow(10, decimals);
    var text = value.toFixed(decimals);
    if (text.indexOf(".") >= 0) text = text.replace(/0+$/, "").replace(/\.$/, "");
    return text + " " + unit;
  }

  // Megabytes with two decimals, halves rounded up, in integers: the page rendered without
  // this script writes the same figure (messaging/compose/views.py, _meter).
  function megabytes(bytes) {
    var hundredths = Math.floor((bytes + LIMITS.bytesPerMB / 200) / (LIMITS.bytesPerMB / 100));
    var rest = hundredths % 100;
    return Math.floor(hundredths / 100) + "." + (rest < 10 ? "0" : "") + rest;
  }

  function sizesApart(value, limit) {
    var shown = formatSize(value);
    var shownLimit = formatSize(limit);
    if (shown === shownLimit) {
      return [grouped(value) + " bytes", grouped(limit) + " bytes (" + shownLimit + ")"];
    }
    return [shown, shownLimit];
  }

  // --- Local checks (the same rules and words as limits.py) -----------------------------------

  function textMessage(units) {
    if (units <= LIMITS.maxTextUnits) return null;
    return (
      "The text is " + grouped(units) + " characters long; RingCentral accepts at most " +
      grouped(LIMITS.maxTextUnits) + " (emoji and some symbols count as 2). Shorten it by " +
      plural(units - LIMITS.maxTextUnits, "character") + "."
    );
  }

  function liveItems() {
    return items.filter(function (item) { return item.state !== "error"; });
  }

  function totals() {
    var live = liveItems();
    var bytes = 0;
    var fixed = 0;
    var fittable = 0;
    live.forEach(function (item) {
      bytes += item.size;
      if (item.fittable) fittable += 1;
      else fixed += item.size;
    });
    return { count: live.length, bytes: bytes, fixed: fixed, fittable: fittable };
  }

  function attachmentMessages() {
    var t = totals();
    var messages = [];
    var notice = null;
    if (t.count > LIMITS.maxAttachments) {
      messages.push(
        plural(t.count, "file") + " attached; RingCentral accepts at most " +
        LIMITS.maxAttachments + ". Remove " + plural(t.count - LIMITS.maxAttachments, "file") + "."
      );
    }
    if (t.bytes > LIMITS.maxAttachmentsBytes) {
      var fit = fitBox && fitBox.checked;
      if (fit && t.fittable && LIMITS.maxAttachmentsBytes - t.fixed >= CONFIG.minImageBytes * t.fittable) {
        notice = "Over " + LIMITS.maxAttachmentsBytesLabel +
          ": the photos will be reduced to fit when you queue the message.";
      } else if (!(fit && t.fittable)) {
        var s = sizesApart(t.bytes, LIMITS.maxAttachmentsBytes);
        var message =
          "The files add up to " + s[0] + "; RingCentral accepts at most " + s[1] +
          " per message. Remove or shrink files to save at least " +
          formatSize(t.bytes - LIMITS.maxAttachmentsBytes, true) + ".";
        if (t.fittable) {
          message += " Or turn on “Reduce photos to fit” and the photos are made smaller for you.";
        }
        messages.push(message);
      }
      // Otherwise the files that cannot shrink fill the budget: the server's check says so.
    }
    return { errors: messages, notice: notice };
  }

  function senderMessage() {
    if (!senderSelect || !liveItems().length) return null;
    var option = senderSelect.options[senderSelect.selectedIndex];
    if (option && option.getAttribute("data-mms") === "0") {
      return option.getAttribute("data-mms-refusal") || null;
    }
    return null;
  }

  // --- Showing errors ---------------------------------------------------------------------------

  function errorList(field) {
    return form.querySelector('[data-errors-for="' + field + '"]');
  }

  function controlFor(field) {
    if (field === "attachments") return fileInput;
    if (field === "mode") return form.querySelector("input[name=mode]");
    return form.querySelector("[name=" + field + "]");
  }

  function localErrors() {
    var errors = { sender: [], to: [], mode: [], text: [], attachments: [] };
    var text = textMessage(textArea ? textArea.value.length : 0);
    if (text) errors.text.push(text);
    var sender = senderMessage();
    if (sender) errors.sender.push(sender);
    errors.attachments = attachmentMessages().errors;
    return errors;
  }

  function render() {
    var local = localErrors();
    Object.keys(local).forEach(function (field) {
      var node = errorList(field);
      if (!node) return;
      var shown = [];
      var add = function (message) {
        if (message && shown.indexOf(message) < 0) shown.push(message);
      };
      // Local findings show at once; the server's join them for fields the user has been to.
      local[field].forEach(add);
      if (touched[field]) (serverErrors[field] || []).forEach(add);
      // A refused file shows its reason in its own row (and it is announced), not twice.
      node.textContent = "";
      shown.forEach(function (message) {
        var li = document.createElement("li");
        li.textContent = message;
        node.appendChild(li);
      });
      var wrapper = node.closest(".field");
      if (wrapper) wrapper.classList.toggle("has-error", shown.length > 0);
      var control = controlFor(field);
      if (control && field !== "mode") {
        if (shown.length) control.setAttribute("aria-invalid", "true");
        else control.removeAttribute("aria-invalid");
        if (node.id) {
          var described = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
          if (described.indexOf(node.id) < 0) {
            described.push(node.id);
            control.setAttribute("aria-describedby", described.join(" "));
          }
        }
      }
    });
    renderCounter();
    renderMeter();
  }

  function renderCounter() {
    if (!counter || !textArea) return;
    // The team's opt-out line, added to a first message to a contact, counts as well.
    var line = CONFIG.optOutLine || "";
    var units = textArea.value.length + line.length;
    var over = units - LIMITS.maxTextUnits;
    counter.textContent =
      grouped(units) + " of " + grouped(LIMITS.maxTextUnits) + " characters" +
      (line ? " (with the opt-out line)" : "") +
      (over > 0 ? " — " + grouped(over) + " too many" : "");
    counter.classList.toggle("counter-over", over > 0);
  }

  function renderMeter() {
    var t = totals();
    meter.textContent =
      t.count + " of " + LIMITS.maxAttachments + " files · " +
      megabytes(t.bytes) + " of " + LIMITS.maxAttachmentsBytesLabel;
    var notice = attachmentMessages().notice;
    if (notice) meter.textContent += " — " + notice;
    var over = t.count > LIMITS.maxAttachments || (t.bytes > LIMITS.maxAttachmentsBytes && !notice);
    meter.classList.toggle("meter-over", over);
    meter.classList.toggle("meter-notice", !!notice);
    if (meterBar) {
      meterBar.style.width = Math.min(100, (100 * t.bytes) / LIMITS.maxAttachmentsBytes) + "%";
      meterBar.parentNode.classList.toggle("meter-over", over);
    }
  }

  function announce(message) {
    if (status) status.textContent = message;
  }

  function names(state, checking) {
    // An upload whose bytes are all sent is being checked by the server (checking === true).
    return liveItems()
      .filter(function (item) {
        return item.state === state && (checking === undefined || !!item.checking === checking);
      })
      .map(function (item) { return "“" + item.name + "”"; });
  }

  // The status line names every file, not just the one that finished last: uploads end in any
  // order, and "b.jpg attached." alone would hide that a.jpg is still on its way.
  function announceFiles(prefix) {
    var done = names("done");
    var uploading = names("uploading", false);
    var checking = names("uploading", true);
    var parts = prefix ? [prefix] : [];
    if (done.length) parts.push("Attached: " + done.join(", ") + ".");
    if (uploading.length) parts.push("Uploading: " + uploading.join(", ") + ".");
    if (checking.length) parts.push("Checking: " + checking.join(", ") + ".");
    if (!done.length && !uploading.length && !checking.length) parts.push("No files attached.");
    announce(parts.join(" "));
  }

  // --- The server's check ---------------------------------------------------------------------

  function fieldsForCheck() {
    var data = new URLSearchParams();
    data.append("sender", senderSelect ? senderSelect.value : "");
    data.append("to", toArea ? toArea.value : "");
    data.append("text", textArea ? textArea.value : "");
    var mode = form.querySelector("input[name=mode]:checked");
    data.append("mode", mode ? mode.value : "");
    if (fitBox && fitBox.checked) data.append("fit_images", "on");
    liveItems().forEach(function (item) {
      if (item.state === "done") data.append("uploads", item.info.id);
    });
    return data;
  }

  function scheduleCheck(delay) {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, delay === undefined ? 400 : delay);
  }

  function runCheck() {
    var seq = ++checkSeq;
    fetch(CONFIG.checkUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfInput.value, "X-Requested-With": "XMLHttpRequest" },
      body: fieldsForCheck(),
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer || seq !== checkSeq) return;
        serverErrors = answer.errors || {};
        renderPreview(answer);
        render();
      })
      .catch(function () { /* the submit still gets the server's full answer */ });
  }

  function renderPreview(answer) {
    if (!preview) return;
    var numbers = answer.recipients || [];
    if (!numbers.length) {
      preview.hidden = true;
      preview.textContent = "";
      return;
    }
    var shown = numbers.slice(0, 5).map(function (n) { return n.display; }).join(", ");
    if (numbers.length > 5) shown += " and " + (numbers.length - 5) + " more";
    var text = plural(numbers.length, "recipient") + ": " + shown;
    if (answer.duplicates) {
      text += " (" + plural(answer.duplicates, "repeated number") + " merged)";
    }
    preview.textContent = text;
    preview.hidden = false;
  }

  // --- Files ------------------------------------------------------------------------------------

  function extensionBadge(name) {
    var dot = name.lastIndexOf(".");
    var ext = dot > 0 ? name.slice(dot + 1) : "";
    return (ext || "file").slice(0, 4).toUpperCase();
  }

  function buildItem(item) {
    var li = document.createElement("li");
    li.className = "attachment";
    li.setAttribute("data-key", String(item.key));
    item.node = li;
    updateItem(item);
    list.appendChild(li);
  }

  function updateItem(item) {
    var li = item.node;
    li.textContent = "";
    li.classList.toggle("attachment-error", item.state === "error");
    li.classList.toggle("attachment-uploading", item.state === "uploading");
    li.setAttribute("data-state", item.state);

    if (item.state === "done" && item.info.thumbnailUrl) {
      var img = document.createElement("img");
      img.className = "thumb";
      img.src = item.info.thumbnailUrl;
      img.alt = "";
      li.appendChild(img);
    } else {
      var icon = document.createElement("span");
      icon.className = "file-icon";
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = extensionBadge(item.name);
      li.appendChild(icon);
    }

    var body = document.createElement("span");
    body.className = "attachment-body";
    var name = document.createElement("span");
    name.className = "attachment-name";
    name.textContent = item.name;
    body.appendChild(name);

    var detail = document.createElement("span");
    detail.className = "attachment-size";
    if (item.state === "done") {
      var info = item.info;
      detail.textContent = info.label + " · " +
        (info.originalSize !== info.size ? formatSize(info.originalSize) + " → " : "") +
        formatSize(info.size);
      body.appendChild(detail);
      if (info.notes && info.notes.length) {
        var notes = document.createElement("span");
        notes.className = "attachment-notes";
        var joined = info.notes.join("; ");
        notes.textContent = joined.charAt(0).toUpperCase() + joined.slice(1);
        body.appendChild(notes);
      }
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "uploads";
      hidden.value = info.id;
      li.appendChild(hidden);
    } else if (item.state === "uploading") {
      var label = document.createElement("label");
      var barId = "upload-progress-" + item.key;
      label.className = "visually-hidden";
      label.setAttribute("for", barId);
      label.textContent = (item.checking ? "Checking " : "Uploading ") + item.name;
      var bar = document.createElement("progress");
      bar.id = barId;
      bar.max = 100;
      if (!item.checking) bar.value = item.progress || 0;
      bar.className = "upload-progress";
      detail.textContent = progressText(item);
      body.appendChild(detail);
      body.appendChild(label);
      body.appendChild(bar);
    } else {
      var error = document.createElement("span");
      error.className = "attachment-error-text";
      error.textContent = item.error;
      body.appendChild(error);
    }
    li.appendChild(body);

    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button-small button-secondary remove";
    remove.textContent = item.state === "uploading" ? "Cancel" : "Remove";
    remove.setAttribute("aria-label", (item.state === "uploading" ? "Cancel upload of " : "Remove ") + item.name);
    remove.addEventListener("click", function () { removeItem(item, true); });
    li.appendChild(remove);
  }

  function progressText(item) {
    return formatSize(item.size) + (item.checking
      ? " · checking…"
      : " · uploading " + Math.round(item.progress || 0) + "%");
  }

  function progressOnly(item) {
    var bar = item.node.querySelector("progress");
    var detail = item.node.querySelector(".attachment-size");
    var label = item.node.querySelector("label.visually-hidden");
    if (bar) {
      // A bar without a value moves on its own: the server is working, for as long as it takes.
      if (item.checking) bar.removeAttribute("value");
      else bar.value = item.progress;
    }
    if (label && item.checking) label.textContent = "Checking " + item.name;
    if (detail) detail.textContent = progressText(item);
  }

  function removeItem(item, focusNext) {
    var index = items.indexOf(item);
    if (index < 0) return;
    if (item.state === "uploading" && item.xhr) item.xhr.abort();
    if (item.state === "done") {
      fetch(item.info.deleteUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfInput.value, "X-Requested-With": "XMLHttpRequest" },
      }).catch(function () { /* it expires on its own */ });
    }
    items.splice(index, 1);
    var next = item.node.nextElementSibling || item.node.previousElementSibling;
    item.node.remove();
    announceFiles("“" + item.name + "” removed.");
    touched.attachments = true;
    render();
    scheduleCheck(0);
    if (focusNext) {
      var target = next ? next.querySelector("button") : fileInput;
      if (target) target.focus();
    }
  }

  function fail(item, message) {
    item.state = "error";
    item.error = message;
    updateItem(item);
    announce(message);
    render();
  }

  function upload(item) {
    var data = new FormData();
    data.append("file", item.file, item.file.name);
    var xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", CONFIG.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfInput.value);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      // The last few percent wait for the server to check the file.
      item.progress = Math.min(95, (95 * event.loaded) / event.total);
      progressOnly(item);
    });
    xhr.upload.addEventListener("load", function () {
      // Every byte is sent; the server now checks the file (a large photo takes a few
      // seconds: it is decoded, cleaned and previewed).
      item.checking = true;
      progressOnly(item);
      announceFiles();
    });
    xhr.addEventListener("load", function () {
      item.checking = false;
      var answer = xhr.response;
      if (xhr.status === 201 && answer && answer.ok) {
        item.state = "done";
        item.info = answer.upload;
        item.name = answer.upload.name;
        item.size = answer.upload.size;
        item.fittable = answer.upload.fittable;
        item.file = null;
        updateItem(item);
        announceFiles();
        render();
        scheduleCheck(0);
      } else {
        fail(item, (answer && answer.error) || "“" + item.name + "” could not be uploaded (error " + xhr.status + "). Try again.");
      }
    });
    xhr.addEventListener("error", function () {
      fail(item, "“" + item.name + "” could not be uploaded: the connection failed. Try again.");
    });
    xhr.send(data);
  }

  function addFiles(fileList) {
    var files = Array.prototype.slice.call(fileList || []);
    if (!files.length) return;
    touched.attachments = true;
    files.forEach(function (file) {
      var item = {
        key: nextKey++,
        file: file,
        name: file.name,
        size: file.size,
        fittable: false,
        progress: 0,
        state: "uploading",
      };
      items.push(item);
      buildItem(item);
      if (file.size > CONFIG.maxFileBytes) {
        fail(item, "“" + file.name + "” is " + formatSize(file.size) + "; this portal accepts files of up to " + CONFIG.maxFileBytesLabel + ". Send a smaller copy.");
      } else if (file.size === 0) {
        fail(item, "“" + file.name + "” is empty (0 bytes). Remove it or attach the file again.");
      } else {
        upload(item);
      }
    });
    announceFiles();
    render();
  }

  // --- Wiring -----------------------------------------------------------------------------------

  // Take over the list the server rendered (kept files after a form came back with errors).
  list.textContent = "";
  initialDrafts.forEach(function (info) {
    var item = {
      key: nextKey++,
      name: info.name,
      size: info.size,
      fittable: info.fittable,
      state: "done",
      info: info,
    };
    items.push(item);
    buildItem(item);
  });

  form.classList.add("js-enhanced");
  var hint = dropzone ? dropzone.querySelector(".dropzone-hint") : null;
  if (hint) hint.hidden = false;

  fileInput.addEventListener("change", function () {
    var chosen = fileInput.files;
    addFiles(chosen);
    // The files travel as drafts; the form itself must not carry them a second time.
    fileInput.value = "";
  });

  if (dropzone) {
    ["dragenter", "dragover"].forEach(function (name) {
      dropzone.addEventListener(name, function (event) {
        event.preventDefault();
        dropzone.classList.add("dropzone-active");
      });
    });
    ["dragleave", "dragend"].forEach(function (name) {
      dropzone.addEventListener(name, function () { dropzone.classList.remove("dropzone-active"); });
    });
    dropzone.addEventListener("drop", function (event) {
      event.preventDefault();
      dropzone.classList.remove("dropzone-active");
      if (event.dataTransfer) addFiles(event.dataTransfer.files);
    });
  }

  if (textArea) {
    textArea.addEventListener("input", function () { render(); scheduleCheck(); });
    textArea.addEventListener("blur", function () { touched.text = true; render(); });
  }
  if (toArea) {
    toArea.addEventListener("input", function () { scheduleCheck(); });
    toArea.addEventListener("blur", function () { touched.to = true; scheduleCheck(0); });
  }
  if (senderSelect) {
    senderSelect.addEventListener("change", function () { touched.sender = true; render(); scheduleCheck(0); });
  }
  form.querySelectorAll("input[name=mode]").forEach(function (radio) {
    radio.addEventListener("change", function () { touched.mode = true; scheduleCheck(0); });
  });
  if (fitBox) {
    fitBox.addEventListener("change", function () { touched.attachments = true; render(); scheduleCheck(0); });
  }

  form.addEventListener("submit", function (event) {
    // "Use template" asks the server to fill the form; nothing is queued.
    if (event.submitter && event.submitter.name === "use_template") return;
    ["sender", "to", "mode", "text", "attachments"].forEach(function (f) { touched[f] = true; });
    var uploading = items.some(function (item) { return item.state === "uploading"; });
    var local = localErrors();
    var blocking = uploading || local.text.length || local.attachments.length || local.sender.length;
    if (!blocking) {
      fileInput.value = "";
      submitButton.disabled = true;
      submitButton.textContent = "Queuing…";
      return;
    }
    event.preventDefault();
    render();
    if (uploading) {
      announce("Wait until the files have finished uploading.");
      return;
    }
    announce("The message was not queued. Please fix the fields marked.");
    var first = form.querySelector(".has-error textarea, .has-error select, .has-error input");
    if (first) first.focus();
  });

  // After going back in history the page may come from the cache with the button disabled.
  window.addEventListener("pageshow", function () {
    submitButton.disabled = false;
    submitButton.textContent = "Queue message";
  });

  // Messages the server rendered with the page stay until the user changes something and the
  // check endpoint answers anew.
  ["sender", "to", "mode", "text", "attachments"].forEach(function (field) {
    var node = errorList(field);
    if (!node || !node.children.length) return;
    touched[field] = true;
    serverErrors[field] = Array.prototype.map.call(node.children, function (li) {
      return li.textContent;
    });
  });
  render();
})();
