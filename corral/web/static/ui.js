// corral's UI: refresh the page's live part every few seconds (no full reloads) and ask before
// changing a job. The server renders and escapes everything; this script only swaps server HTML
// in and shows messages as text.
(function () {
  "use strict";
  var EVERY_MS = 2000;
  var live = document.getElementById("live");
  var flash = document.getElementById("flash");
  var busy = false;

  function refresh() {
    if (busy || !live || document.hidden) return Promise.resolve();
    busy = true;
    return fetch(location.pathname + location.search, {
      headers: { "X-Corral-Fragment": "1" }, credentials: "same-origin", cache: "no-store"
    }).then(function (r) {
      if (r.status === 401) {
        location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
        return;
      }
      if ((r.headers.get("content-type") || "").indexOf("text/html") !== 0) return;  // not a page's live part
      return r.text().then(function (html) {
        live.innerHTML = html;
        document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
      });
    }).catch(function () { /* the master may be restarting: the next round tries again */ })
      .finally(function () { busy = false; });
  }

  function say(text, ok) {
    if (!flash) return;
    flash.textContent = text;
    flash.className = ok ? "ok" : "error";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset || !form.dataset.confirm) return;
    event.preventDefault();
    var data = new FormData(form);
    var question = form.dataset.confirm.replace(/\{(\w+)\}/g, function (_, key) {
      return data.get(key) === null ? "" : String(data.get(key));
    });
    if (!window.confirm(question)) return;
    data.set("confirmed", "1");
    fetch(form.action, {
      method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
      headers: { "X-Corral-Fragment": "1" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        say(body.message || ("HTTP " + r.status), r.ok);
        return refresh();
      });
    }).catch(function (e) { say(String(e), false); });
  });

  if (live) setInterval(refresh, EVERY_MS);
})();
