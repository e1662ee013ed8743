// The approvals console's style sheet and script, served as /console.css and /console.js (the
// pages' Content-Security-Policy allows no inline script or style). The script only refreshes the
// lists the server renders (every value escaped there) and counts down the time left; every
// decision is a plain form post.
#include "daemon/console.h"

namespace writ::daemon {

const char kConsoleCss[] = R"css(
:root { color-scheme: light dark; --bad: #c62828; --ask: #ef6c00; --ok: #2e7d32; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em;
  border-bottom: 1px solid #8884; }
nav { display: flex; gap: 1.2em; align-items: center; flex: 1; }
nav .who { margin-left: auto; opacity: .8; }
.count { background: var(--ask); color: #fff; border-radius: 1em; padding: 0 .5em; }
main { padding: 1em 1.2em; max-width: 80em; }
h1 { font-size: 1.3em; }
article.approval { border: 1px solid #8886; border-left: 4px solid var(--ask);
  border-radius: 6px; padding: .4em 1em 1em; margin-bottom: 1.2em; }
article h2 { font-size: 1.1em; }
dl { display: grid; grid-template-columns: 8em 1fr; gap: .3em 1em; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font: 13px ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
ol.args { margin: .2em 0; }
.cut { opacity: .7; font-style: italic; }
time.urgent { color: var(--bad); font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .25em .5em; border-bottom: 1px solid #8883; vertical-align: top; }
tr.bad td, tr.critical td, tr.high td { color: var(--bad); }
tr.ask td { color: var(--ask); }
form.decide { display: flex; flex-wrap: wrap; gap: .6em; align-items: center; margin-top: .8em; }
form.decide input[type=text] { flex: 1; min-width: 16em; }
form.inline { display: inline; }
button { padding: .3em .9em; cursor: pointer; }
button.approve { background: var(--ok); color: #fff; border: 0; border-radius: 4px; }
button.deny, button.kill, button.revoke { background: var(--bad); color: #fff; border: 0;
  border-radius: 4px; }
.message { font-size: 1.05em; }
.empty { opacity: .7; }
form.filter { display: flex; gap: .5em; margin-bottom: 1em; }
)css";

const char kConsoleJs[] = R"js(
// writ approvals console: refreshes server-rendered lists, counts down; nothing else.
(function () {
  'use strict';
  // A list is not replaced while the approver is in it (focus, or a reason typed).
  function busy(el) {
    var a = document.activeElement;
    if (a && a !== document.body && el.contains(a)) return true;
    var inputs = el.querySelectorAll('input[type=text]');
    for (var i = 0; i < inputs.length; i++) { if (inputs[i].value) return true; }
    return false;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll('time[data-expires]').forEach(function (t) {
      var left = Math.max(0, Math.round((Date.parse(t.getAttribute('data-expires')) - now) / 1000));
      t.textContent = left + ' s';
      t.classList.toggle('urgent', left < 30);
    });
  }
  function refresh() {
    document.querySelectorAll('[data-refresh]').forEach(function (el) {
      if (busy(el)) return;
      fetch(el.getAttribute('data-refresh'), { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) {
          if (r.status === 401) { location.reload(); return null; }
          var n = r.headers.get('X-Writ-Pending');
          var p = document.getElementById('pending');
          if (n !== null && p) p.textContent = n;
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (typeof html === 'string' && !busy(el)) { el.innerHTML = html; tick(); }
        })
        .catch(function () {});
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    tick();
    setInterval(tick, 1000);
    setInterval(refresh, 2000);
  });
})();
)js";

}  // namespace writ::daemon
