/* Tracking page, opt-in only: Web Push for this report's news, and live location sharing.
 * Nothing asks for a permission until the person taps the button. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var up = $("uploads");
  var msgs = {};
  try { msgs = JSON.parse((up && up.getAttribute("data-msgs")) || "{}"); } catch (e) { msgs = {}; }
  function m(key, vals) {
    var s = msgs[key] || key;
    Object.keys(vals || {}).forEach(function (k) { s = s.split("{" + k + "}").join(String(vals[k])); });
    return s;
  }
  function postJSON(url, method, body) {
    return fetch(url, { method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body) });
  }

  /* --- Web Push ------------------------------------------------------------------------ */
  var pushBox = $("push-box");
  if (pushBox) {
    var token = pushBox.getAttribute("data-token");
    var onBtn = $("push-btn"), offBtn = $("push-off-btn"), pStatus = $("push-status");
    var mine = "cb-push:" + token;  // the endpoint this browser subscribed for this report
    var say = function (key) { pStatus.textContent = m(key); };
    var show = function (on) { onBtn.hidden = on; offBtn.hidden = !on; };
    var supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
    if (!supported) {
      say("track.push_unsupported");
    } else {
      var registration = function () {
        return navigator.serviceWorker.getRegistration("/").then(function (reg) {
          return reg || navigator.serviceWorker.register("/sw.js", { scope: "/" });
        }).then(function () { return navigator.serviceWorker.ready; });
      };
      var keyBytes = function (b64) {
        var s = (b64 + "===".slice((b64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
        var raw = atob(s), out = new Uint8Array(raw.length);
        for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
        return out;
      };
      var stored = null;
      try { stored = window.localStorage.getItem(mine); } catch (e) { stored = null; }
      show(false);
      if (stored) {
        registration().then(function (reg) { return reg.pushManager.getSubscription(); })
          .then(function (sub) {
            if (sub && sub.endpoint === stored) { show(true); say("track.push_on"); }
          }).catch(function () {});
      }
      onBtn.addEventListener("click", function () {
        onBtn.disabled = true;
        fetch("/api/v1/push/key", { headers: { "Accept": "application/json" } })
          .then(function (r) {
            if (r.status === 404) throw { key: "track.push_unavailable" };
            if (!r.ok) throw { key: "track.push_failed" };
            return r.json();
          })
          .then(function (k) {
            return registration().then(function (reg) {
              return reg.pushManager.getSubscription().then(function (sub) {
                return sub || reg.pushManager.subscribe({ userVisibleOnly: true,
                  applicationServerKey: keyBytes(k.public_key) });
              });
            });
          })
          .then(function (sub) {
            var body = sub.toJSON();
            body.tracking_token = token;
            return postJSON("/api/v1/push/subscriptions", "POST", body).then(function (r) {
              if (!r.ok) {
                return r.json().catch(function () { return {}; }).then(function (j) {
                  throw { text: j.detail || m("track.push_failed") };
                });
              }
              try { window.localStorage.setItem(mine, sub.endpoint); } catch (e) { /* private mode */ }
              show(true); say("track.push_on");
            });
          })
          .catch(function (err) {
            if (err && err.text) { pStatus.textContent = err.text; return; }
            if (err && err.key) { say(err.key); return; }
            say(Notification.permission === "denied" ? "track.push_denied" : "track.push_failed");
          })
          .then(function () { onBtn.disabled = false; });
      });
      offBtn.addEventListener("click", function () {
        // The browser keeps its subscription (other reports may use it): only this
        // report stops sending to it.
        var endpoint = stored;
        try { endpoint = window.localStorage.getItem(mine) || stored; } catch (e) { /* ignore */ }
        postJSON("/api/v1/push/subscriptions", "DELETE", { tracking_token: token, endpoint: endpoint || "" })
          .then(function (r) {
            if (!r.ok && r.status !== 404) throw new Error("failed");
            try { window.localStorage.removeItem(mine); } catch (e) { /* ignore */ }
            show(false); say("track.push_off");
          }).catch(function () { say("track.push_failed"); });
      });
    }
  }

  /* A push arrived while this page is open: show the news now. */
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", function (e) {
      if (e.data && e.data.type === "push" && window.htmx && document.querySelector("#status[hx-get]")) {
        window.htmx.trigger("#status", "refresh");
      }
    });
  }

  /* --- live location --------------------------------------------------------------------- */
  var locBox = $("loc-box");
  if (!locBox) return;
  var ltoken = locBox.getAttribute("data-token");
  var startBtn = $("loc-btn"), stopBtn = $("loc-stop-btn"), lStatus = $("loc-status");
  var EVERY_MS = 30000;
  var watchId = null, timer = null, latest = null, lastSent = 0, sending = false, notBefore = 0;
  var lsay = function (key, vals) { lStatus.textContent = m(key, vals); };
  if (!navigator.geolocation) { lsay("track.loc_unsupported"); return; }
  startBtn.hidden = false;

  function clock(d) {
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function stop(key) {
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    watchId = null;
    clearInterval(timer); timer = null;
    latest = null;
    startBtn.hidden = key === "track.loc_closed";
    stopBtn.hidden = true;
    locBox.setAttribute("data-sharing", "0");
    if (key) lsay(key);
  }
  function send(force) {
    if (!latest || sending) return;
    var now = Date.now();
    if (now < notBefore || (!force && now - lastSent < EVERY_MS)) return;
    sending = true;
    var pos = latest;
    var body = { lat: pos.coords.latitude, lon: pos.coords.longitude,
      accuracy_m: Math.max(0, pos.coords.accuracy || 0), at: new Date(pos.timestamp || now).toISOString() };
    postJSON("/api/v1/track/" + encodeURIComponent(ltoken) + "/location", "POST", body)
      .then(function (r) {
        if (r.ok) {
          lastSent = Date.now();
          locBox.setAttribute("data-sent", String(Number(locBox.getAttribute("data-sent") || 0) + 1));
          lsay("track.loc_on", { time: clock(new Date()), acc: Math.round(body.accuracy_m) });
        } else if (r.status === 409 || r.status === 404) {
          stop("track.loc_closed");
        } else if (r.status === 429) {
          notBefore = Date.now() + 1000 * (parseInt(r.headers.get("Retry-After"), 10) || 10);
        } else {
          lsay("track.loc_failed");
        }
      }, function () { lsay("track.loc_failed"); })
      .then(function () { sending = false; });
  }
  startBtn.addEventListener("click", function () {
    if (watchId !== null) return;
    startBtn.hidden = true; stopBtn.hidden = false;
    locBox.setAttribute("data-sharing", "1");
    lsay("track.loc_waiting");
    var first = true;
    watchId = navigator.geolocation.watchPosition(function (pos) {
      latest = pos;
      send(first);  // the first fix goes at once, then one every 30 s
      first = false;
    }, function (err) {
      if (err && err.code === 1) stop("track.loc_denied");
      else lsay("track.loc_failed");
    }, { enableHighAccuracy: true, maximumAge: 15000, timeout: 60000 });
    // A phone that does not move may not report again: send the latest fix every 30 s.
    timer = setInterval(function () {
      if (latest && Date.now() - (latest.timestamp || 0) > 60000 && Date.now() - lastSent >= EVERY_MS) {
        navigator.geolocation.getCurrentPosition(function (pos) {
          if (watchId !== null) { latest = pos; send(false); }
        }, function () {}, { enableHighAccuracy: true, maximumAge: 20000, timeout: 20000 });
        return;
      }
      send(false);
    }, 5000);
  });
  stopBtn.addEventListener("click", function () { stop("track.loc_stopped"); });
  window.addEventListener("pagehide", function () { if (watchId !== null) stop(""); });
})();
