/* Progressive enhancement only: every page works without this file.
 *
 * - [data-autofocus]   focused on load, so a result or an error summary is read out first.
 * - [data-countdown]   seconds left; its .clock or <time> child ticks as m:ss, and at zero its
 *                      text becomes data-countdown-done. At zero the page's
 *                      [data-countdown-announce] live region says data-countdown-say (if set,
 *                      "" for nothing), else the text of the element data-countdown-reveal
 *                      names (which is shown), else data-countdown-done.
 * - [data-reload]      seconds after which the page fetches itself again, because the server has
 *                      news (on a [data-countdown], counted from its zero). A page that keeps
 *                      waiting (no countdown) waits twice as long each time, up to a minute.
 *                      Not while the code input holds something typed: then the hidden notice
 *                      data-reload-news names is shown and read out instead. After a reload the
 *                      focus goes back where it was, and nothing else takes it.
 * - [data-enable-after] a button the server will accept after that many seconds: disabled until
 *                      then (it is rendered enabled, so that it works without this file).
 * - [data-once]        a submit button disabled once its form is sent, so a double click sends once.
 */
(function () {
  "use strict";

  var RELOAD_KEY = "coffeeshop:reload";
  var MAX_WAIT_SECONDS = 60;
  var reloaded = recallReload();

  function clock(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function announce(text) {
    var region = document.querySelector("[data-countdown-announce]");
    if (region && text) {
      region.textContent = text;
    }
  }

  function reveal(id) {
    var element = id && document.getElementById(id);
    if (!element) {
      return null;
    }
    element.hidden = false;
    return element;
  }

  function codeInput() {
    return document.querySelector("input.code-input");
  }

  // What the page knew before it reloaded itself: where the focus was, and how many times in a
  // row it has reloaded to wait for news. Null after any other way of arriving.
  function recallReload() {
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(RELOAD_KEY) || "null");
      window.sessionStorage.removeItem(RELOAD_KEY);
      return saved && saved.path === window.location.pathname ? saved : null;
    } catch (error) {
      return null; // no session storage (a private window, say)
    }
  }

  function refresh(element, waiting) {
    var input = codeInput();
    if (input && input.value.trim() !== "") {
      // Reloading would throw away what the customer typed: tell them instead.
      var news = document.getElementById(element.getAttribute("data-reload-news"));
      if (news && news.hidden) {
        news.hidden = false;
        announce(news.textContent.trim());
      }
      return;
    }
    try {
      var focused = document.activeElement;
      window.sessionStorage.setItem(
        RELOAD_KEY,
        JSON.stringify({
          path: window.location.pathname,
          focus: focused && focused !== document.body ? focused.id : "",
          waits: waiting ? ((reloaded && reloaded.waits) || 0) + 1 : 0,
        })
      );
    } catch (error) {
      // Without session storage the reload only loses the focus.
    }
    // A GET of the page's own address, never a resubmitted form, and no history entry.
    window.location.replace(window.location.href.split("#")[0]);
  }

  function reloadLater(element) {
    var seconds = parseFloat(element.getAttribute("data-reload"));
    var waiting = !element.hasAttribute("data-countdown");
    if (waiting && reloaded) {
      seconds = Math.min(MAX_WAIT_SECONDS, seconds * Math.pow(2, reloaded.waits));
    }
    window.setTimeout(function () {
      refresh(element, waiting);
    }, seconds * 1000);
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
      }
      var revealed = reveal(element.getAttribute("data-countdown-reveal"));
      var say = element.getAttribute("data-countdown-say");
      if (say === null) {
        say = revealed ? revealed.textContent.trim() : done;
      }
      announce(say);
      if (element.hasAttribute("data-reload")) {
        reloadLater(element);
      }
    }
    tick();
  }

  function enableLater(button) {
    var seconds = parseFloat(button.getAttribute("data-enable-after"));
    button.disabled = true;
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
  document.querySelectorAll("[data-reload]:not([data-countdown])").forEach(reloadLater);
  document.querySelectorAll("[data-enable-after]").forEach(enableLater);
  document.querySelectorAll("button[data-once]").forEach(sendOnce);

  // Back where the customer was before the page reloaded itself, else to the page's first news.
  var first = reloaded
    ? reloaded.focus && document.getElementById(reloaded.focus)
    : document.querySelector("[data-autofocus]");
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
