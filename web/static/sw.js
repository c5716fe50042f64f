/* CanhBao service worker: keeps the app shell for use without a connection, sends
 * reports waiting in the outbox (Background Sync where the browser has it), and shows the
 * reporter's Web Push notifications (payload JSON {title, body, url, silent, tag}). */
"use strict";
importScripts("/static/js/outbox.js");

var CACHE = "canhbao-shell-v3";
var SHELL = [
  "/", "/offline", "/manifest.webmanifest",
  "/static/css/app.css", "/static/js/common.js", "/static/js/outbox.js", "/static/js/report.js",
  "/static/js/track.js", "/static/js/track-live.js", "/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/htmx.min.js", "/static/icons/icon.svg", "/static/icons/categories.svg",
  "/static/icons/icon-192.png",
];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(SHELL.map(function (url) {
      return cache.add(new Request(url, { cache: "reload" })).catch(function () {});
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) {
      return caches.delete(k);
    }));
  }).then(function () { return self.clients.claim(); }));
});

function isPage(url) {
  return url.pathname === "/" || url.pathname.indexOf("/t/") === 0;
}

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate") {
    event.respondWith(fetch(req).then(function (resp) {
      if (resp.ok && isPage(url)) {
        var copy = resp.clone();
        var key = url.pathname === "/" ? "/" : url.pathname;
        caches.open(CACHE).then(function (c) { return c.put(key, copy); });
      }
      return resp;
    }).catch(function () {
      var key = url.pathname === "/" ? "/" : url.pathname;
      return caches.match(key).then(function (hit) {
        return hit || caches.match(url.pathname.indexOf("/t/") === 0 ? "/offline" : "/")
          .then(function (fallback) { return fallback || caches.match("/offline"); });
      });
    }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0 || url.pathname === "/manifest.webmanifest") {
    // Cache first, refreshed in the background.
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(req).then(function (hit) {
        var network = fetch(req).then(function (resp) {
          if (resp.ok) cache.put(req, resp.clone());
          return resp;
        });
        if (hit) { network.catch(function () {}); return hit; }
        return network;
      });
    }));
  }
});

function notifyClients() {
  return self.clients.matchAll({ includeUncontrolled: true }).then(function (clients) {
    clients.forEach(function (c) { c.postMessage({ type: "outbox-changed" }); });
  });
}

self.addEventListener("sync", function (event) {
  if (event.tag !== "send-reports") return;
  event.waitUntil(self.CBOutbox.flush().then(function (results) {
    return self.CBOutbox.flushUploads({}).then(function (up) {
      return notifyClients().then(function () {
        if (results.some(function (r) { return r.retry; }) || up.pending) throw new Error("retry later");
      });
    });
  }));
});

self.addEventListener("message", function (event) {
  if (event.data && event.data.type === "flush") {
    event.waitUntil(self.CBOutbox.flush().then(function () {
      return self.CBOutbox.flushUploads({});
    }).then(notifyClients));
  }
});

/* Web Push (activities/push.py sends): one notification per report (tag), silent for a
 * silent SOS (no sound, no vibration); a tap opens or focuses the report's tracking page. */
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data ? event.data.text() : "" }; }
  var silent = !!data.silent;
  var options = {
    body: data.body || "", tag: data.tag || "canhbao", renotify: !silent,
    icon: "/static/icons/icon-192.png", badge: "/static/icons/icon-192.png",
    data: { url: data.url || "/" }, silent: silent, lang: "vi",
  };
  if (!silent) options.vibrate = [200, 100, 200];
  event.waitUntil(Promise.all([
    self.registration.showNotification(data.title || "CanhBao", options),
    // An open tracking page shows the news at once instead of at its next refresh.
    self.clients.matchAll({ type: "window" }).then(function (list) {
      list.forEach(function (c) { c.postMessage({ type: "push", url: data.url || "" }); });
    }),
  ]));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  if (target.origin !== self.location.origin) target = new URL("/", self.location.origin);
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
    for (var i = 0; i < list.length; i++) {
      var c = list[i];
      if (new URL(c.url).pathname === target.pathname && "focus" in c) {
        if ("navigate" in c) return c.navigate(target.href).then(function (w) { return (w || c).focus(); });
        return c.focus();
      }
    }
    return self.clients.openWindow(target.href);
  }));
});
