/* Console keyboard path: j/k or arrows move along the queue, Enter opens, v verifies,
 * 1–4 set the priority, c the category, r dispatches to the proposed unit, x rejects (type
 * the reason, Enter), m merges into the first suggested duplicate, n shows the new reports,
 * / searches, ? shows every key, Esc closes. Focus lands on the next sensible control after
 * every action and every live refresh: never on <body>. */
(function () {
  "use strict";
  var S = window.CanhBaoStaff;
  var help = document.getElementById("keys-help");

  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/.test(el.type);
  }
  function links() {
    return Array.prototype.slice.call(document.querySelectorAll("#rows > li.inc > a.inc-link"));
  }
  function selectedLink() {
    return document.querySelector("#rows > li.inc.selected > a.inc-link");
  }
  /* Focus without scrolling, so nothing moves under the pointer; `show` scrolls it into
   * sight when a key asked for it. */
  function focusOn(el, show) {
    if (!el) return false;
    el.focus({ preventScroll: true });
    if (show && el.scrollIntoView) el.scrollIntoView({ block: "nearest" });
    return document.activeElement === el;
  }
  function move(step) {
    var all = links();
    if (!all.length) return;
    var at = all.indexOf(document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("a.inc-link") : null);
    if (at < 0) at = all.indexOf(selectedLink());
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    focusOn(all[next], true);
  }
  /* The row after the one just dealt with (or that row, when it is the last). */
  function nextRow() {
    var all = links(), at = all.indexOf(selectedLink());
    var live = all.filter(function (a, n) { return n > at && !a.parentNode.classList.contains("gone"); });
    return live[0] || all[at] || all[0];
  }
  function press(id) {
    var b = document.getElementById(id);
    if (!b || b.disabled) return false;
    b.click();
    return true;
  }
  function none() { S.toast(S.msg("staff.keys.none"), "info"); }

  function closeDetail() {
    var d = document.getElementById("detail");
    var row = selectedLink();
    if (d && d.getAttribute("data-incident")) {
      var empty = document.createElement("div");
      empty.id = "detail";
      empty.className = "detail";
      empty.setAttribute("data-incident", "");
      empty.innerHTML = '<p class="empty"></p>';
      empty.firstChild.textContent = S.msg("staff.detail.pick");
      d.parentNode.replaceChild(empty, d);
      var sel = document.getElementById("f-selected");
      if (sel) sel.value = "";
      document.querySelectorAll("#rows > li.selected").forEach(function (li) { li.classList.remove("selected"); });
      var u = new URL(window.location.href);
      u.searchParams.delete("selected");
      window.history.replaceState(null, "", u.pathname + u.search);
    }
    focusOn(row || links()[0], true);
  }

  var ACTIONS = {
    v: function () { return press("btn-verify"); },
    r: function () { return press("btn-dispatch") || press("btn-route"); },
    m: function () { return press("btn-merge"); },
    x: function () { return focusOn(document.getElementById("reject-reason"), true); },
    c: function () { return focusOn(document.getElementById("c-category"), true); }
  };

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (e.key === "Escape") {
      if (help && help.open) return;  // the dialog closes itself
      if (typing(t)) { t.blur(); focusOn(selectedLink() || links()[0] || document.getElementById("d-title")); }
      else closeDetail();
      e.preventDefault();
      return;
    }
    if (typing(t) || (help && help.open && e.key !== "?")) return;
    var radio = t && t.type === "radio";
    var k = e.key;
    if (k === "j" || (k === "ArrowDown" && !radio)) move(1);
    else if (k === "k" || (k === "ArrowUp" && !radio)) move(-1);
    else if (k === "?") { if (help.open) help.close(); else help.showModal(); }
    else if (k === "/") { var q = document.getElementById("f-q"); focusOn(q, true); if (q) q.select(); }
    else if (k === "n") { var bar = document.getElementById("new-bar"); if (bar && !bar.hidden) bar.click(); }
    else if (/^[1-4]$/.test(k)) {
      var p = document.querySelector("#dispatch-form input[name=priority][value='" + k + "']");
      if (!p) none();
      else { p.checked = true; p.form.setAttribute("data-dirty", "1"); focusOn(p, true); }
    } else if (ACTIONS[k]) { if (!ACTIONS[k]()) none(); }
    else return;
    e.preventDefault();
  });
  var opener = document.getElementById("keys-open");
  if (opener && help) opener.addEventListener("click", function () { help.showModal(); });
  if (help) help.addEventListener("close", function () { focusOn(selectedLink() || links()[0] || opener); });

  /* --- focus after actions and refreshes ------------------------------------------- */
  var acted = null;     // the form an action was sent from (its class names the action)
  var held = null;      // what had focus inside the detail before it was replaced
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    var form = elt && elt.closest && elt.closest("#detail form.act");
    if (form) acted = elt.id === "btn-classify" ? "act-classify-only" : form.className;
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    var t = e.detail.target, a = document.activeElement;
    if (t && t.id === "detail" && a && t.contains(a)) {
      held = { id: a.id, name: a.name, value: a.value };
    } else if (t && t.id === "detail") held = null;
  });
  function inDetail(sel) { return document.querySelector("#detail " + sel); }
  function afterAction(kind) {
    if (/act-verify/.test(kind)) {
      return focusOn(inDetail("#dispatch-form input[name=priority]:checked")) || focusOn(document.getElementById("btn-dispatch"));
    }
    if (/act-classify-only/.test(kind)) return focusOn(document.getElementById("btn-dispatch") || document.getElementById("btn-route"));
    if (/act-(dispatch|route|reject|merge|reassign|close)/.test(kind)) return focusOn(nextRow());
    // Sent: back on its button (a box with the focus would hold off live refreshes).
    if (/act-message/.test(kind)) return focusOn(document.getElementById("btn-message"));
    if (/act-note/.test(kind)) return focusOn(document.getElementById("btn-note"));
    return false;
  }
  function restore(h) {
    if (!h) return false;
    if (h.id && focusOn(document.getElementById(h.id))) return true;
    if (h.name) {
      var same = document.querySelector("#detail [name='" + h.name + "'][value='" + String(h.value).replace(/'/g, "") + "']");
      if (focusOn(same)) return true;
    }
    return false;
  }
  function fallback() {
    return focusOn(selectedLink()) || focusOn(document.getElementById("d-title")) ||
      focusOn(links()[0]) || focusOn(document.getElementById("keys-open"));
  }
  function lost() { var a = document.activeElement; return !a || a === document.body || !a.isConnected; }

  document.addEventListener("htmx:afterSettle", function (e) {
    var t = e.detail.target;
    if (t && t.id === "detail") {
      var kind = acted, h = held;
      acted = null; held = null;
      if (kind && afterAction(kind)) return;
      if (restore(h)) return;
    }
    if (lost()) fallback();
  });
  /* A refused action (a toast) or a request that failed: the button it came from was
   * disabled meanwhile and lost the focus; give it back. */
  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt;
    window.setTimeout(function () {
      if (!lost()) return;
      if (elt && elt.isConnected) {
        var b = elt.tagName === "FORM" ? elt.querySelector("button[type=submit]") : elt;
        if (focusOn(b)) return;
      }
      fallback();
    }, 0);
  });
  document.addEventListener("queue-patched", function () { if (lost()) fallback(); });
})();
