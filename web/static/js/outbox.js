/* The report outbox, shared by the report page and the service worker.
 *
 * A report is written to IndexedDB (store "outbox") before it is sent, under its
 * client-generated report_id. flush() sends every waiting report: first the files that were
 * not uploaded yet, then POST /api/v1/reports. The server is idempotent on report_id, so a
 * report sent twice (page and service worker at once, or a lost answer) arrives once.
 * Sent reports move to the store "sent" so the page can show their tracking links.
 */
(function (root) {
  "use strict";
  var DB_NAME = "canhbao";
  var VERSION = 1;

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = root.indexedDB.open(DB_NAME, VERSION);
      req.onupgradeneeded = function () {
        var db = req.result;
        if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "report_id" });
        if (!db.objectStoreNames.contains("sent")) db.createObjectStore("sent", { keyPath: "report_id" });
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function withStore(name, mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(name, mode);
        var result;
        tx.oncomplete = function () { db.close(); resolve(result); };
        tx.onerror = function () { db.close(); reject(tx.error); };
        tx.onabort = function () { db.close(); reject(tx.error); };
        var req = fn(tx.objectStore(name));
        if (req) req.onsuccess = function () { result = req.result; };
      });
    });
  }

  var api = {
    put: function (entry) { return withStore("outbox", "readwrite", function (s) { return s.put(entry); }); },
    get: function (id) { return withStore("outbox", "readonly", function (s) { return s.get(id); }); },
    remove: function (id) { return withStore("outbox", "readwrite", function (s) { return s.delete(id); }); },
    all: function () { return withStore("outbox", "readonly", function (s) { return s.getAll(); }); },
    sent: function () { return withStore("sent", "readonly", function (s) { return s.getAll(); }); },
    markSent: function (id, accepted) {
      var rec = { report_id: id, tracking_code: accepted.tracking_code, status_url: accepted.status_url,
        at: new Date().toISOString() };
      return withStore("sent", "readwrite", function (s) { return s.put(rec); }).then(function () {
        return api.remove(id);
      });
    },
  };

  function uploadBlob(file) {
    var form = new FormData();
    form.append("file", file.blob, file.name || "photo");
    return root.fetch("/api/v1/attachments", { method: "POST", body: form, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 201 || r.status === 200) return r.json();
        return r.json().catch(function () { return {}; }).then(function (body) {
          var err = new Error("upload " + r.status);
          err.permanent = r.status >= 400 && r.status < 500;
          err.status = r.status;
          err.body = body;
          throw err;
        });
      });
  }

  /* Send one report. Resolves {ok: true, accepted} or {ok: false, status, body} for a
   * permanent refusal (4xx); rejects on network trouble or 5xx (try again later). */
  api.send = function (entry) {
    var chain = Promise.resolve();
    (entry.files || []).forEach(function (f) {
      chain = chain.then(function () {
        if (f.attachment_id) return;
        return uploadBlob(f).then(function (out) {
          f.attachment_id = out.attachment_id;
          delete f.blob;
          return api.put(entry);
        });
      });
    });
    return chain.then(function () {
      var body = JSON.parse(JSON.stringify(entry.body));
      body.attachments = (body.attachments || []).concat(
        (entry.files || []).map(function (f) { return f.attachment_id; }));
      return root.fetch("/api/v1/reports", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json",
          "Accept-Language": entry.lang || "vi" },
        body: JSON.stringify(body),
      });
    }).then(function (r) {
      if (r.status >= 200 && r.status < 300) {
        return r.json().then(function (accepted) {
          return api.markSent(entry.report_id, accepted).then(function () {
            return { ok: true, accepted: accepted };
          });
        });
      }
      if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          entry.refused = { status: r.status, body: body };
          return api.put(entry).then(function () { return { ok: false, status: r.status, body: body }; });
        });
      }
      throw new Error("server " + r.status);
    }, function (err) {
      if (err && err.permanent) {
        entry.refused = { status: err.status, body: err.body || {} };
        return api.put(entry).then(function () { return { ok: false, status: err.status, body: err.body }; });
      }
      throw err;
    });
  };

  var flushing = null;
  /* Send every waiting report once; resolves to the list of results. */
  api.flush = function () {
    if (flushing) return flushing;
    flushing = api.all().then(function (entries) {
      var results = [];
      var chain = Promise.resolve();
      entries.filter(function (e) { return !e.refused; }).forEach(function (e) {
        chain = chain.then(function () {
          return api.send(e).then(function (res) { results.push(res); },
            function (err) { results.push({ ok: false, retry: true, error: String(err) }); });
        });
      });
      return chain.then(function () { return results; });
    }).finally(function () { flushing = null; });
    return flushing;
  };

  root.CBOutbox = api;
})(typeof self !== "undefined" ? self : window);
