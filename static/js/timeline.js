// Accounts and timeline: small enhancements. Every page works without this file.
(function () {
  "use strict";

  // After htmx puts a saved entry, an edit form or an error in place, move focus there so that
  // keyboard and screen-reader users land on the result instead of the top of the page.
  function focusMarked() {
    var target = document.querySelector("[data-autofocus]");
    if (!target) {
      return;
    }
    target.removeAttribute("data-autofocus");
    target.focus({ preventScroll: false });
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    // The live language prompts swap into their own polite live regions: never steal focus.
    if (target && target.classList && target.classList.contains("language-findings")) {
      return;
    }
    focusMarked();
  });

  document.addEventListener("DOMContentLoaded", focusMarked);
})();
