/* Keyboard flow of the review page (no framework, no build step).
 *   Enter in a value: check its format; when right, mark it confirmed (or corrected, when it
 *   was changed) and move to the next value, then to the first page decision.
 *   Ctrl+Enter does the same in a multi-line value. Tab moves as usual.
 *   A page marked "needs rescan" needs a reason before the form is sent.
 * The server checks everything again: this script only saves the clerk a round trip. */
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) { return; }
  var inputs = Array.prototype.slice.call(form.querySelectorAll(".field-value"));

  function validDate(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value), y, mo, d;
    if (m) { y = +m[1]; mo = +m[2]; d = +m[3]; } else {
      m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(value);
      if (!m) { return false; }
      d = +m[1]; mo = +m[2]; y = +m[3];
    }
    var t = new Date(Date.UTC(y, mo - 1, d));
    return y >= 1800 && y <= 2199 && t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 &&
      t.getUTCDate() === d;
  }

  function valid(input) {
    var value = input.value.trim();
    if (!value) { return false; }
    if (input.dataset.kind === "date") { return validDate(value); }
    if (input.dataset.pattern) {
      return new RegExp("^(?:" + input.dataset.pattern + ")$", "u").test(value);
    }
    return true;
  }

  function show(input, ok) {
    var message = document.getElementById(input.id + "-error");
    input.setAttribute("aria-invalid", ok ? "false" : "true");
    if (message) { message.textContent = ok ? "" : input.dataset.hint; }
    return ok;
  }

  function changed(input) { return input.value.trim() !== input.defaultValue.trim(); }

  function markDone(input) {
    var box = document.getElementById(input.dataset.confirm);
    var status = document.getElementById(input.id + "-status");
    var row = input.closest(".field-row");
    if (box) { box.checked = true; }
    if (status) {
      status.textContent = changed(input) ? form.dataset.msgCorrected : form.dataset.msgConfirmed;
    }
    if (row) { row.classList.add("done"); }
  }

  function moveOn(input) {
    var next = inputs[inputs.indexOf(input) + 1];
    while (next && next.closest("details") && !next.closest("details").open) {
      next = inputs[inputs.indexOf(next) + 1];
    }
    if (!next) {
      var section = input.closest("section.doc") || form;
      next = section.querySelector("fieldset input[type=radio]:checked") ||
        section.querySelector("fieldset input[type=radio]") || document.getElementById("save");
    }
    if (next) { next.focus(); }
  }

  inputs.forEach(function (input) {
    input.addEventListener("keydown", function (event) {
      var multi = input.tagName === "TEXTAREA";
      if (event.key !== "Enter" || event.shiftKey || (multi && !event.ctrlKey)) { return; }
      event.preventDefault();
      if (show(input, valid(input))) { markDone(input); moveOn(input); }
    });
    input.addEventListener("input", function () {
      var status = document.getElementById(input.id + "-status");
      var box = document.getElementById(input.dataset.confirm);
      if (box) { box.checked = false; }
      if (status) { status.textContent = changed(input) ? form.dataset.msgPending : ""; }
      var row = input.closest(".field-row");
      if (row) { row.classList.remove("done"); }
    });
  });

  // Outlines of flagged regions: positioned here (the page's security policy allows no
  // inline styles), in percent of the page so they follow the image at any size.
  Array.prototype.forEach.call(document.querySelectorAll(".region[data-box]"), function (el) {
    var box = el.dataset.box.split(",").map(Number), size = el.dataset.size.split(",").map(Number);
    el.style.left = (box[0] * 100 / size[0]) + "%";
    el.style.top = (box[1] * 100 / size[1]) + "%";
    el.style.width = ((box[2] - box[0]) * 100 / size[0]) + "%";
    el.style.height = ((box[3] - box[1]) * 100 / size[1]) + "%";
  });

  form.addEventListener("submit", function (event) {
    var first = null;
    inputs.forEach(function (input) {
      var box = document.getElementById(input.dataset.confirm);
      if ((changed(input) || (box && box.checked)) && !show(input, valid(input))) {
        first = first || input;
      }
    });
    Array.prototype.forEach.call(form.querySelectorAll("input[type=radio][value=rescan]:checked"),
      function (radio) {
        var reason = document.getElementById(radio.dataset.reason);
        var message = document.getElementById(radio.dataset.reason + "-error");
        var ok = reason && reason.value.trim() !== "";
        if (reason) { reason.setAttribute("aria-invalid", ok ? "false" : "true"); }
        if (message) { message.textContent = ok ? "" : form.dataset.msgReason; }
        if (!ok) { first = first || reason; }
      });
    if (first) { event.preventDefault(); first.focus(); }
  });
}());
