(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Live countdowns: every [data-expires-in] shows the time left in .left.
  Array.prototype.forEach.call(document.querySelectorAll("[data-expires-in]"), function (el) {
    var end = Date.now() + (parseInt(el.getAttribute("data-expires-in"), 10) || 0) * 1000;
    var out = el.querySelector(".left") || el;
    var timer;
    function tick() {
      var s = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      out.textContent = s > 0 ? Math.floor(s / 60) + ":" + pad(s % 60) : "已过期";
      if (s === 0) {
        el.classList.add("expired");
        clearInterval(timer);
      }
    }
    timer = setInterval(tick, 1000);
    tick();
  });

  // One submission per form: a double tap must not send twice.
  Array.prototype.forEach.call(document.querySelectorAll("form"), function (f) {
    f.addEventListener("submit", function () {
      setTimeout(function () {
        Array.prototype.forEach.call(document.querySelectorAll("button[type=submit]"), function (b) { b.disabled = true; });
      }, 0);
    });
  });

  // Back from the next page (back-forward cache): the buttons work again.
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll("button[type=submit]"), function (b) { b.disabled = false; });
  });

  var copy = document.getElementById("copy");
  var code = document.getElementById("login-code");
  if (copy && code) {
    var label = copy.textContent;
    var done = function (ok) {
      copy.textContent = ok ? "已复制" : "复制失败，请长按登录码手动复制";
      setTimeout(function () { copy.textContent = label; }, 2500);
    };
    // Without the asynchronous clipboard (plain HTTP, old browsers) a
    // hidden textarea and execCommand still copy.
    var fallback = function (text) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "offscreen";
      document.body.appendChild(ta);
      ta.select();
      ta.setSelectionRange(0, text.length);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      done(ok);
    };
    copy.addEventListener("click", function () {
      var text = code.textContent.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () { fallback(text); });
      } else {
        fallback(text);
      }
    });
  }
})();
