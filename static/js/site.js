/* Progressive enhancement only: every page works without this file.
 *
 * - [data-autofocus]   focused on load, so a result or an error summary is read out first.
 * - [data-countdown]   seconds left; its .clock or <time> child ticks as m:ss, and at zero its
 *                      text becomes data-countdown-done (announced through the form's
 *                      [data-countdown-announce] live region, if it has one).
 * - [data-enable-after] a disabled button that the server will accept after that many seconds.
 * - [data-once]        a submit button disabled once its form is sent, so a double click sends once.
 */
(function () {
  "use strict";

  function clock(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function countdown(element) {
    // Measured on this page's own clock, so a wrong device clock does not matter.
    var deadline = performance.now() + parseInt(element.getAttribute("data-countdown"), 10) * 1000;
    var display = element.querySelector(".clock, time") || element;
    function tick() {
      var left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
      if (left > 0) {
        display.textContent = clock(left);
        window.setTimeout(tick, 250);
        return;
      }
      var done = element.getAttribute("data-countdown-done");
      if (done !== null) {
        element.textContent = done;
        var form = element.closest("form");
        var announce = form && form.querySelector("[data-countdown-announce]");
        if (announce) {
          announce.textContent = done;
        }
      }
    }
    tick();
  }

  function enableLater(button) {
    var seconds = parseFloat(button.getAttribute("data-enable-after"));
    // A little after the server's moment, so the first click is never refused.
    window.setTimeout(function () {
      button.disabled = false;
      button.removeAttribute("data-enable-after");
    }, seconds * 1000 + 500);
  }

  function sendOnce(button) {
    var form = button.form;
    if (!form) {
      return;
    }
    form.addEventListener("submit", function () {
      // After the submit has been taken, so the click itself still goes through.
      window.setTimeout(function () {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      }, 0);
    });
  }

  document.querySelectorAll("[data-countdown]").forEach(countdown);
  document.querySelectorAll("[data-enable-after]").forEach(enableLater);
  document.querySelectorAll("button[data-once]").forEach(sendOnce);

  var first = document.querySelector("[data-autofocus]");
  if (first) {
    first.focus();
  }

  // A page restored by the back button comes back with its buttons disabled; the form keeps
  // its request_id, so sending it again is safe.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll("button[data-once][aria-busy]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  });
})();
