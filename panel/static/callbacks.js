// The callbacks page: confirm a cancel, and keep the list fresh while nobody
// is filling in a form or listening to a message.
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var button = ev.submitter || ev.target.querySelector("button[data-confirm]");
    var text = button && button.getAttribute("data-confirm");
    if (text && !window.confirm(text)) {
      ev.preventDefault();
    }
  });
  function busy() {
    if (document.querySelector("details[open]")) return true;
    var audios = document.querySelectorAll("audio");
    for (var i = 0; i < audios.length; i++) {
      if (!audios[i].paused) return true;
    }
    var active = document.activeElement;
    return !!(active && active.closest && active.closest("form"));
  }
  window.setInterval(function () {
    if (!busy() && document.visibilityState === "visible") {
      window.location.reload();
    }
  }, 20000);
})();
