/* Console queue: a live refresh patches the rows in place and never moves one (not the
 * row under the pointer, not the selected one, none). New rows wait behind the "N báo tin
 * mới" bar (click it or press N to show them, in the list's order); rows that left the list
 * are dimmed until then. A refresh asks for the rows shown plus room for new ones, so a
 * list paged past 100 rows stays whole. A new P1 or a newly overdue report beeps (Web
 * Audio, once the page has had a key press or a click, as browsers require). The list
 * needs no guard against refreshes (staff.js data-guard): a merge replaces nothing but the
 * insides of rows, and leaves a flood group someone opened or types in as it is. */
(function () {
  "use strict";
  var S = window.CanhBaoStaff;
  var ROWS = "#rows > li.inc, #rows > li.grp";
  var MAX_ROWS = 1000;
  var applying = false;   // the next refresh of the list replaces it (the bar was used)
  var waiting = 0;        // rows that arrived and wait behind the bar
  var served = {};        // row key -> its HTML as last served (to patch only what changed)
  var beeped = {};        // row key + cue -> true (each cue sounds once)

  function list() { return document.getElementById("incident-list"); }
  function key(li) {
    if (li.hasAttribute("data-id")) return "i:" + li.getAttribute("data-id");
    return "g:" + li.getAttribute("data-group");
  }
  function rows(root) { return Array.prototype.slice.call(root.querySelectorAll(ROWS)); }
  function body(li) {
    var a = li.querySelector("a.inc-link");
    return a && li.classList.contains("inc") ? a : li;
  }

  /* --- sound ------------------------------------------------------------------------- */
  var audio = null;
  var soundBox = document.getElementById("sound-on");
  function soundOn() {
    try { return window.localStorage.getItem("cb-sound") !== "0"; } catch (e) { return true; }
  }
  if (soundBox) {
    soundBox.checked = soundOn();
    soundBox.addEventListener("change", function () {
      try { window.localStorage.setItem("cb-sound", soundBox.checked ? "1" : "0"); } catch (e) { /* private mode */ }
    });
  }
  function unlock() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) { try { audio = new Ctx(); } catch (e) { audio = null; } }
    if (audio && audio.state === "suspended") audio.resume().catch(function () {});
  }
  document.addEventListener("keydown", unlock, true);
  document.addEventListener("pointerdown", unlock, true);
  /* Two short tones: higher for a new P1, lower for a report fallen overdue. The count on
   * <body> lets anyone (and the tests) see that a cue was given, even when muted. */
  function beep(cue) {
    var b = document.body;
    b.setAttribute("data-beeps", String((parseInt(b.getAttribute("data-beeps"), 10) || 0) + 1));
    b.setAttribute("data-last-cue", cue);
    if (!soundOn() || !audio || audio.state !== "running") return;
    var t = audio.currentTime;
    [0, 0.22].forEach(function (d) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = cue === "p1" ? 880 : 660;
      gain.gain.setValueAtTime(0.0001, t + d);
      gain.gain.exponentialRampToValueAtTime(0.25, t + d + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + d + 0.18);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t + d);
      osc.stop(t + d + 0.2);
    });
  }
  function cue(li, wasLate) {
    var k = key(li);
    if (li.getAttribute("data-prio") === "1" && !beeped[k + "p1"] && li.getAttribute("data-state") === "received") {
      beeped[k + "p1"] = true;
      return "p1";
    }
    if (li.classList.contains("overdue") && !wasLate && !beeped[k + "late"]) {
      beeped[k + "late"] = true;
      return "late";
    }
    return null;
  }
  /* What the page showed when it loaded is known already: no cue for it. */
  function knowAll() {
    var el = list();
    if (!el) return;
    rows(el).forEach(function (li) {
      var k = key(li);
      if (li.getAttribute("data-prio") === "1") beeped[k + "p1"] = true;
      if (li.classList.contains("overdue")) beeped[k + "late"] = true;
    });
  }
  knowAll();

  /* --- the bar ----------------------------------------------------------------------- */
  function measure() {
    var f = document.getElementById("filters");
    if (f) document.documentElement.style.setProperty("--filters-h", f.offsetHeight + "px");
  }
  measure();
  window.addEventListener("resize", measure);
  function showBar(changed) {
    var bar = document.getElementById("new-bar");
    if (!bar) return;
    if (waiting > 0) bar.textContent = S.msg("staff.list.new").replace("{n}", String(waiting));
    else if (changed) bar.textContent = S.msg("staff.list.reorder");
    bar.hidden = !(waiting > 0 || changed);
    bar.classList.toggle("arrivals", waiting > 0);
    var el = list();
    if (el) el.setAttribute("data-waiting", String(waiting));
  }
  function apply() {
    var el = list();
    if (!el) return;
    applying = true;
    window.htmx.trigger(el, "refresh");
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#new-bar")) apply();
  });

  /* How many rows a refresh asks for: those shown and room for arrivals, or (showing the
   * arrivals) those shown, without the ones that left, and the arrivals. */
  document.addEventListener("htmx:configRequest", function (e) {
    var el = list();
    if (!el || e.detail.elt !== el) return;
    var shown = rows(el).length;
    var gone = el.querySelectorAll("#rows > li.gone").length;
    var n = applying ? shown - gone + waiting : shown + 100;
    e.detail.parameters.rows = String(Math.min(MAX_ROWS, Math.max(100, n)));
  });

  /* A refresh of the same view (filters and order) is merged into the rows shown; a
   * change the operator asked for (other filters or order, the bar, a group action)
   * replaces the list as before. */
  var VIEW = /data-view="([^"]*)"/;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var el = list();
    if (!el || e.detail.target !== el || !e.detail.shouldSwap || applying) return;
    if (e.detail.xhr && e.detail.xhr.status !== 200) return;
    var cfg = e.detail.requestConfig || {};
    if (cfg.verb && cfg.verb !== "get") return;
    var view = (e.detail.serverResponse || "").match(VIEW);
    if (!view || view[1] !== (el.getAttribute("data-view") || "").replace(/&/g, "&amp;")) return;
    e.detail.shouldSwap = false;
    merge(el, e.detail.serverResponse);
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    var t = e.detail.target;
    if (!t || t.id !== "incident-list") return;
    applying = false;
    waiting = 0;
    served = {};
    rows(t).forEach(function (li) { served[key(li)] = null; });
    knowAll();
    showBar(false);
  });

  function patch(old, nu) {
    var selected = old.classList.contains("selected");
    var keep = ["fresh", "unread"].filter(function (c) { return old.classList.contains(c); });
    old.className = nu.className;
    keep.forEach(function (c) { old.classList.add(c); });
    old.classList.toggle("selected", selected);
    ["data-prio", "data-state", "data-size"].forEach(function (a) {
      if (nu.hasAttribute(a)) old.setAttribute(a, nu.getAttribute(a));
    });
    var into = body(old), from = body(nu);
    // A flood group someone opened or is typing in is left as it is until the next time.
    if (old.classList.contains("grp") && (old.querySelector("details[open]") || old.contains(document.activeElement))) return;
    into.innerHTML = from.innerHTML;  // the element itself (a link, a row) stays
  }

  function merge(el, html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    var fresh = tpl.content.querySelector("#incident-list");
    if (!fresh) return;
    ["#state-counts", "p.count"].forEach(function (sel) {
      var a = el.querySelector(sel), b = fresh.querySelector(sel);
      if (a && b && a.innerHTML !== b.innerHTML) a.innerHTML = b.innerHTML;
    });
    el.setAttribute("data-markers", fresh.getAttribute("data-markers") || "[]");
    var shown = {}, order = [];
    rows(el).forEach(function (li) { shown[key(li)] = li; order.push(key(li)); });
    var incoming = rows(fresh);
    var last = -1;
    incoming.forEach(function (li, n) { if (shown[key(li)]) last = n; });
    var more = !!el.querySelector("#rows > li.more");
    var arrivals = 0, cues = [], present = {}, sequence = [];
    incoming.forEach(function (li, n) {
      var k = key(li), old = shown[k];
      present[k] = true;
      if (old) {
        sequence.push(k);
        var wasLate = old.classList.contains("overdue");
        var html = body(li).innerHTML + "|" + li.className;
        if (served[k] !== html) {
          patch(old, li);
          served[k] = html;
        }
        old.classList.remove("gone");
        var c = cue(li, wasLate);
        if (c) cues.push(c);
      } else if (!more || n < last) {  // before the end of what is shown: an arrival
        arrivals += 1;
        var a = cue(li, false);
        if (a) cues.push(a);
      }
    });
    var gone = 0;
    order.forEach(function (k) {
      if (!present[k]) { shown[k].classList.add("gone"); gone += 1; }
    });
    var kept = order.filter(function (k) { return present[k]; });
    var moved = kept.join() !== sequence.join();
    waiting = arrivals;
    showBar(moved || gone > 0);
    if (cues.length) beep(cues.indexOf("p1") >= 0 ? "p1" : "late");
    if (S.tick) S.tick();
    if (S.markUnread) S.markUnread();
    document.dispatchEvent(new CustomEvent("queue-patched"));
  }

  window.CanhBaoQueue = { apply: apply, waiting: function () { return waiting; } };
})();
