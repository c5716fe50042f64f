/* CanhBao service worker: keeps the app shell for use without a connection and sends
 * reports waiting in the outbox (Background Sync where the browser has it). */
"use strict";
importScripts("/static/js/outbox.js");

var CACHE = "canhbao-shell-v2";
var SHELL = [
  "/", "/offline", "/manifest.webmanifest",
  "/static/css/app.css", "/static/js/common.js", "/static/js/outbox.js", "/static/js/report.js",
  "/static/js/track.js", "/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
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
