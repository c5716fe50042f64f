/* CanhBao staff pages: CSRF header on HTMX requests, toasts, the live feed (SSE) that
 * refreshes the lists, deadline countdowns, and a guard so that a refresh never wipes a
 * form someone is filling in. No inline scripts: the CSP forbids them. */
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.getAttribute("data-csrf") || "";
  var msgs = {};
  try { msgs = JSON.parse(body.getAttribute("data-msgs") || "{}"); } catch (e) { msgs = {}; }
  function msg(key) { return msgs[key] || key; }

  var toasts = document.getElementById("toasts");
  function expire(el) {
    var ms = el.classList.contains("error") ? 9000 : 4500;
    setTimeout(function () { if (el.parentNode) el.parentNode.removeChild(el); }, ms);
  }
  function toast(text, kind) {
    var el = document.createElement("div");
    el.className = "toast " + (kind || "ok");
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = text;
    toasts.appendChild(el);
    expire(el);
    trim();
    return el;
  }
  /* Keep only the newest few toasts (one on a phone) so they never cover the work. */
  function trim() {
    var max = window.innerWidth < 600 ? 1 : 3;
    while (toasts.children.length > max) toasts.removeChild(toasts.firstElementChild);
  }
  Array.prototype.forEach.call(toasts.children, expire);
  new MutationObserver(function (list) {
    list.forEach(function (m) {
      Array.prototype.forEach.call(m.addedNodes, function (n) {
        if (n.nodeType === 1 && !n.dataset.timed) { n.dataset.timed = "1"; expire(n); }
      });
      if (m.addedNodes.length) trim();
    });
  }).observe(toasts, { childList: true });

  document.addEventListener("htmx:configRequest", function (e) {
    if (csrf) e.detail.headers["X-CSRF-Token"] = csrf;
  });
  document.addEventListener("staff-toast", function (e) {
    if (e.detail && e.detail.text) toast(e.detail.text, e.detail.kind || "ok");
  });
  document.addEventListener("htmx:sendError", function () { toast(msg("staff.err.network"), "error"); });
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (xhr && xhr.status >= 500) toast(msg("staff.err.network"), "error");
  });

  /* --- guard: no refresh over a form being edited ------------------------------------ */
  document.addEventListener("input", function (e) {
    var form = e.target.closest && e.target.closest("form");
    if (form && !form.matches("#filters")) form.setAttribute("data-dirty", "1");
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (form && form.tagName === "FORM" && e.detail.successful) form.removeAttribute("data-dirty");
  });
  function busy(el) {
    if (el.querySelector("form[data-dirty]")) return true;
    // An action form someone has just opened (close, note, reassign) counts as in use, and
    // so do details someone opened to read (an officer's photos and notes).
    if (el.querySelector("details[open] form, details.info-box[open]")) return true;
    // A request sent from inside it (a group rejection) is still running: its answer
    // replaces the element, and a refresh now would drop that answer.
    if (el.querySelector(".htmx-request")) return true;
    var a = document.activeElement;
    // (A radio or checkbox only focused is not in use: the console puts the focus on one
    // after an action and gives it back after a refresh.)
    return !!(a && el.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) &&
              !/^(submit|radio|checkbox)$/.test(a.type));
  }
  function guarded(e) {
    var el = e.detail.elt;
    var verb = (e.detail.requestConfig && e.detail.requestConfig.verb) || "get";
    if (verb !== "get" || !el || !el.hasAttribute || !el.hasAttribute("data-guard")) return null;
    return el;
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var el = guarded(e);
    if (!el) return;
    if (el.getAttribute("data-force") === "1") { el.setAttribute("data-force", "2"); return; }
    if (busy(el)) { e.preventDefault(); stale(el); }
  });
  /* A refresh sent before someone started typing must not land over their input. */
  document.addEventListener("htmx:beforeSwap", function (e) {
    var el = guarded(e);
    if (!el) return;
    if (el.getAttribute("data-force") === "2") { el.removeAttribute("data-force"); return; }
    if (busy(el)) { e.detail.shouldSwap = false; stale(el); }
  });
  function stale(el) {
    if (el.querySelector(".stale-btn")) return;
    var b = document.createElement("button");
    b.type = "button";
    b.className = "stale-btn";
    b.textContent = msg("staff.updated") + " · " + msg("staff.reload");
    b.addEventListener("click", function () {
      el.setAttribute("data-force", "1");
      window.htmx.trigger(el, "refresh");
    });
    el.insertBefore(b, el.firstChild);
  }

  /* --- countdowns -------------------------------------------------------------------- */
  function clock(seconds) {
    var s = Math.max(0, Math.round(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (h && m < 10 ? "0" : "") + m, ss = (r < 10 ? "0" : "") + r;
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-deadline")) - now) / 1000;
      if (isNaN(left)) return;
      el.classList.toggle("late", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 60);
      if (el.hasAttribute("data-plain")) el.textContent = clock(left);
      else el.textContent = left < 0 ? msg("staff.overdue") + " " + clock(-left) : msg("staff.left") + " " + clock(left);
    });
    document.querySelectorAll("[data-overdue-since]").forEach(function (el) {
      var late = (now - Date.parse(el.getAttribute("data-overdue-since"))) / 60000;
      if (!isNaN(late)) el.textContent = msg("staff.overdue_min").replace("{m}", Math.max(1, Math.floor(late)));
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var since = (now - Date.parse(el.getAttribute("data-since"))) / 1000;
      if (!isNaN(since)) el.textContent = clock(since);
    });
  }
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);

  /* --- asking the reporter ------------------------------------------------------------ */
  /* A ready phrase goes into the box to be edited or sent (without JavaScript it is sent
   * at once: the button submits it as `quick`). */
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.quick-phrase");
    if (!b) return;
    var box = b.form && b.form.querySelector("textarea[name=text]");
    if (!box) return;
    e.preventDefault();
    box.value = b.value;
    b.form.setAttribute("data-dirty", "1");
    box.focus();
  });

  /* The reporter's answers arrive on the live feed: a toast, and a "new answer" marker on
   * the incident's row (console list, officer card) until it is opened; in an open
   * timeline the answer itself is marked until clicked. */
  var unread = {}, highlight = {};
  try { unread = JSON.parse(window.sessionStorage.getItem("cb-unread") || "{}"); } catch (e) { unread = {}; }
  function saveUnread() {
    try { window.sessionStorage.setItem("cb-unread", JSON.stringify(unread)); } catch (e) { /* private mode */ }
  }
  function markUnread() {
    document.querySelectorAll("#incident-list li.inc[data-id], #cards .card[data-id]").forEach(function (el) {
      var on = !!unread[el.getAttribute("data-id")];
      el.classList.toggle("unread", on);
      var badge = el.querySelector(".unread-badge");
      if (on && !badge) {
        badge = document.createElement("span");
        badge.className = "unread-badge";
        badge.textContent = msg("staff.msg.unread");
        (el.querySelector(".row1, header") || el).appendChild(badge);
      } else if (!on && badge) {
        badge.parentNode.removeChild(badge);
      }
    });
    document.querySelectorAll("[data-thread]").forEach(function (list) {
      var seqs = highlight[list.getAttribute("data-thread")] || [];
      list.querySelectorAll("li.ev-reply[data-seq]").forEach(function (li) {
        li.classList.toggle("unread", seqs.indexOf(parseInt(li.getAttribute("data-seq"), 10)) >= 0);
      });
    });
  }
  function seen(id, thread) {
    if (unread[id]) { delete unread[id]; saveUnread(); }
    if (thread) delete highlight[id];
    markUnread();
  }
  document.addEventListener("click", function (e) {
    if (!e.target.closest) return;
    var row = e.target.closest("li.inc[data-id] a, .card[data-id] .btn-info");
    if (row) seen(row.closest("[data-id]").getAttribute("data-id"), false);
    var thread = e.target.closest("[data-thread]");
    if (thread) seen(thread.getAttribute("data-thread"), true);
  });
  document.addEventListener("htmx:afterSettle", markUnread);
  document.addEventListener("staff-event", function (e) {
    var d = e.detail.data || {};
    if (d.action !== "reply" || !d.incident_id) return;
    var open = document.getElementById("detail");
    var shown = open && open.getAttribute("data-incident") === d.incident_id;
    if (!shown) unread[d.incident_id] = true;
    (highlight[d.incident_id] = highlight[d.incident_id] || []).push(d.seq);
    saveUnread();
    markUnread();
    toast(msg("staff.msg.replied") + (d.tracking_code ? ": " + d.tracking_code : ""), "info");
  });
  markUnread();

  /* --- live feed --------------------------------------------------------------------- */
  var live = document.getElementById("live");
  var timer = null;
  function refreshAll() {
    timer = null;
    ["incident-list", "cards", "alerts"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el && window.htmx) window.htmx.trigger(el, "refresh");
    });
  }
  function connect() {
    if (!live || !window.EventSource) return;
    var es = new EventSource("/api/v1/events");
    es.onopen = function () { live.setAttribute("data-state", "on"); };
    es.onerror = function () { live.setAttribute("data-state", "off"); };
    ["incident.new", "incident.changed", "incident.left", "alert.raised", "alert.resolved", "reports.group"].forEach(function (kind) {
      es.addEventListener(kind, function (ev) {
        var data = {};
        try { data = JSON.parse(ev.data); } catch (err) { data = {}; }
        document.dispatchEvent(new CustomEvent("staff-event", { detail: { kind: kind, data: data } }));
        if (!timer) timer = setTimeout(refreshAll, 250);
      });
    });
    // A reporter's live location moves one marker; the lists stay as they are.
    es.addEventListener("reporter.location", function (ev) {
      var data = {};
      try { data = JSON.parse(ev.data); } catch (err) { data = {}; }
      document.dispatchEvent(new CustomEvent("staff-event", { detail: { kind: "reporter.location", data: data } }));
    });
  }
  connect();

  window.CanhBaoStaff = { msg: msg, csrf: csrf, toast: toast, clock: clock, tick: tick,
    markUnread: markUnread };
})();
