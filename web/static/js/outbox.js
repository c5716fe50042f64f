/* The report outbox and the upload queue, shared by the citizen pages and the service worker.
 *
 * IndexedDB "canhbao":
 *   outbox  — reports not yet accepted, under their client-generated report_id. send() posts
 *             the report alone (no files: it must not wait for them); the server is idempotent
 *             on report_id, so a report sent twice (page and service worker at once, or a lost
 *             answer) arrives once. A 503 or 429 keeps it queued until the answer's
 *             Retry-After has passed (retry_at); flush() skips it until then.
 *   sent    — accepted reports {report_id, tracking_code, status_url}, for the tracking links.
 *   uploads — photos/videos that follow an accepted report: {key, token, name, type, size,
 *             blob, attachment_id, attached, failed, retry_at, lease_until}. flushUploads()
 *             uploads each file (POST /api/v1/attachments) and attaches it through the
 *             tracking token (POST /api/v1/track/{token}/info), several files in one call when
 *             they are ready together. Network trouble and 5xx retry with a growing delay,
 *             429 waits the server's Retry-After; the record stays until it is attached.
 *
 * A lease (lease_until, renewed while the bytes flow) keeps the page and the service worker
 * from sending the same file at once; a page closed mid-upload lets the lease lapse and the
 * next flush, from any page or the service worker, sends the file again from the start.
 */
(function (root) {
  "use strict";
  var DB_NAME = "canhbao";
  var VERSION = 2;
  var LEASE_MS = 20000;
  var KEEP_DONE_MS = 24 * 3600 * 1000;

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = root.indexedDB.open(DB_NAME, VERSION);
      req.onupgradeneeded = function () {
        var db = req.result;
        if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "report_id" });
        if (!db.objectStoreNames.contains("sent")) db.createObjectStore("sent", { keyPath: "report_id" });
        if (!db.objectStoreNames.contains("uploads")) db.createObjectStore("uploads", { keyPath: "key" });
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  /* Run fn(stores...) in one transaction over `names`; resolves with what fn returned
   * (a request's result, or a plain value). */
  function tx(names, mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(names, mode);
        var out, req;
        t.oncomplete = function () { db.close(); resolve(req ? req.result : out); };
        t.onerror = function () { db.close(); reject(t.error); };
        t.onabort = function () { db.close(); reject(t.error); };
        out = fn.apply(null, names.map(function (n) { return t.objectStore(n); }));
        if (out && typeof out === "object" && "onsuccess" in out && "readyState" in out) req = out;
      });
    });
  }

  function newKey() {
    if (root.crypto && root.crypto.randomUUID) return root.crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  var api = {
    put: function (entry) { return tx(["outbox"], "readwrite", function (s) { return s.put(entry); }); },
    get: function (id) { return tx(["outbox"], "readonly", function (s) { return s.get(id); }); },
    remove: function (id) { return tx(["outbox"], "readwrite", function (s) { return s.delete(id); }); },
    all: function () { return tx(["outbox"], "readonly", function (s) { return s.getAll(); }); },
    sent: function () { return tx(["sent"], "readonly", function (s) { return s.getAll(); }); },
    uploads: function (token) {
      return tx(["uploads"], "readonly", function (s) { return s.getAll(); }).then(function (all) {
        return all.filter(function (u) { return !token || u.token === token; })
          .sort(function (a, b) { return a.order - b.order; });
      });
    },
  };

  /* Queue files behind an accepted report. files: [{name, type, blob, size?}]. */
  api.queueUploads = function (accepted, files, stores) {
    var now = Date.now();
    var records = (files || []).filter(function (f) { return f.blob; }).map(function (f, i) {
      return { key: newKey(), token: accepted.tracking_token, tracking_code: accepted.tracking_code,
        name: f.name || "photo", type: f.type || f.blob.type || "", size: f.blob.size,
        original_size: f.original_size || f.blob.size, blob: f.blob, attachment_id: null,
        attached: false, failed: null, retry_at: 0, attempts: 0, lease_until: 0, order: now + i };
    });
    if (stores) { records.forEach(function (r) { stores.put(r); }); return Promise.resolve(records); }
    return tx(["uploads"], "readwrite", function (s) {
      records.forEach(function (r) { s.put(r); });
    }).then(function () { return records; });
  };

  /* Mark a report accepted: it leaves the outbox, its files join the upload queue, in one
   * transaction (a crash leaves either the report waiting or the files queued). */
  api.markSent = function (entry, accepted) {
    var rec = { report_id: entry.report_id, tracking_code: accepted.tracking_code,
      status_url: accepted.status_url, tracking_token: accepted.tracking_token,
      at: new Date().toISOString() };
    return tx(["sent", "outbox", "uploads"], "readwrite", function (sent, outbox, uploads) {
      sent.put(rec);
      outbox.delete(entry.report_id);
      api.queueUploads(accepted, entry.files || [], uploads);
    });
  };

  function errorOf(status, body) {
    var err = new Error("http " + status);
    err.status = status;
    err.body = body || {};
    err.permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
    return err;
  }

  function retryAfterMs(value) {
    if (!value) return 0;
    var s = parseInt(value, 10);
    if (isFinite(s) && String(s) === String(value).trim()) return Math.max(0, s) * 1000;
    var at = Date.parse(value);
    return isFinite(at) ? Math.max(0, at - Date.now()) : 0;
  }

  /* POST a JSON body; resolves {status, body, retryAfterMs}, rejects on network trouble. */
  function postJson(url, body, lang) {
    return root.fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
        "Accept-Language": lang || "vi" },
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) {
        return { status: r.status, body: b, retryAfterMs: retryAfterMs(r.headers.get("Retry-After")) };
      });
    });
  }

  /* Send one report, without its files. Resolves {ok: true, accepted} or {ok: false, status,
   * body} for a permanent refusal (4xx); rejects on network trouble, 429 or 5xx (later). */
  api.send = function (entry) {
    var body = JSON.parse(JSON.stringify(entry.body));
    // Files uploaded by an older version of this page, before the report.
    body.attachments = (body.attachments || []).concat((entry.files || [])
      .filter(function (f) { return f.attachment_id && !f.blob; })
      .map(function (f) { return f.attachment_id; }));
    entry.files = (entry.files || []).filter(function (f) { return f.blob; });
    return postJson("/api/v1/reports", body, entry.lang).then(function (res) {
      if (res.status >= 200 && res.status < 300) {
        return api.markSent(entry, res.body).then(function () { return { ok: true, accepted: res.body }; });
      }
      var err = errorOf(res.status, res.body);
      if (!err.permanent) {
        // 503 (neither store can take it now) or 429: the report stays queued and is not
        // sent again before the server's Retry-After.
        err.retryAfterMs = res.retryAfterMs;
        if (!res.retryAfterMs) throw err;
        entry.retry_at = Date.now() + res.retryAfterMs;
        return api.put(entry).then(function () { throw err; }, function () { throw err; });
      }
      entry.refused = { status: res.status, body: res.body };
      return api.put(entry).then(function () { return { ok: false, status: res.status, body: res.body }; });
    });
  };

  var flushing = null;
  /* Send every waiting report once; resolves to the list of results. */
  api.flush = function () {
    if (flushing) return flushing;
    flushing = api.all().then(function (entries) {
      var results = [];
      var chain = Promise.resolve();
      var now = Date.now();
      entries.filter(function (e) { return !e.refused && !(e.retry_at > now); }).forEach(function (e) {
        chain = chain.then(function () {
          return api.send(e).then(function (res) { results.push(res); },
            function (err) { results.push({ ok: false, retry: true, error: String(err) }); });
        });
      });
      return chain.then(function () { return results; });
    }).finally(function () { flushing = null; });
    return flushing;
  };

  // --- the upload queue -------------------------------------------------------------------

  function update(key, fn) {
    return tx(["uploads"], "readwrite", function (s) {
      var req = s.get(key);
      var out = { value: null };
      req.onsuccess = function () {
        var rec = req.result;
        if (!rec) return;
        var changed = fn(rec);
        if (changed !== false) { s.put(rec); out.value = rec; }
      };
      return out;
    }).then(function (out) { return out.value; });
  }

  /* Take the lease on a record to upload it; resolves the record, or null when someone
   * else holds it, it waits for a retry, or it is uploaded already. */
  function claim(key) {
    return update(key, function (rec) {
      var now = Date.now();
      if (rec.attached || rec.failed || rec.attachment_id || rec.lease_until > now
          || rec.retry_at > now) return false;
      rec.lease_until = now + LEASE_MS;
      rec.lease_owner = api.owner;
    });
  }
  function release(key, fn) {
    return update(key, function (rec) {
      rec.lease_until = 0;
      if (fn) fn(rec);
    });
  }

  /* Upload one blob; XHR in a page (progress), fetch in the service worker. */
  function uploadBlob(rec, onProgress) {
    var name = rec.name || "photo";
    if (root.XMLHttpRequest && root.document) {
      return new Promise(function (resolve, reject) {
        var xhr = new XMLHttpRequest();
        xhr.open("POST", "/api/v1/attachments");
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.onprogress = function (e) { if (onProgress) onProgress(e.loaded, e.total || rec.size); };
        xhr.onload = function () {
          var body = {};
          try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
          if (xhr.status === 201 || xhr.status === 200) resolve(body);
          else {
            var err = errorOf(xhr.status, body);
            err.retryAfterMs = retryAfterMs(xhr.getResponseHeader("Retry-After"));
            reject(err);
          }
        };
        xhr.onerror = function () { reject(new Error("network")); };
        xhr.onabort = function () { reject(new Error("aborted")); };
        var data = new FormData();
        data.append("file", rec.blob, name);
        xhr.send(data);
      });
    }
    var form = new FormData();
    form.append("file", rec.blob, name);
    return root.fetch("/api/v1/attachments", { method: "POST", body: form, credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 201 || r.status === 200) return body;
          var err = errorOf(r.status, body);
          err.retryAfterMs = retryAfterMs(r.headers.get("Retry-After"));
          throw err;
        });
      });
  }

  function backoff(rec, ms) {
    rec.attempts = (rec.attempts || 0) + 1;
    rec.retry_at = Date.now() + (ms || Math.min(60000, 2000 * Math.pow(2, rec.attempts - 1)));
  }

  function failed(status, body) {
    return { status: status, detail: (body && (body.detail || body.error)) || "" };
  }

  /* Lease every uploaded, unattached file of `token` that nobody else holds; resolves them. */
  function claimReady(token) {
    return tx(["uploads"], "readwrite", function (s) {
      var out = { value: [] };
      var req = s.openCursor();
      req.onsuccess = function () {
        var c = req.result;
        if (!c) return;
        var r = c.value, now = Date.now();
        if (r.token === token && r.attachment_id && !r.attached && !r.failed
            && r.retry_at <= now && !(r.lease_until > now)) {
          r.lease_until = now + LEASE_MS; r.lease_owner = api.owner;
          c.update(r); out.value.push(r);
        }
        c.continue();
      };
      return out;
    }).then(function (out) { return out.value; });
  }

  /* Attach every uploaded, unattached file of `token` in one call. */
  function attach(token, lang, emit) {
    return claimReady(token).then(function (ready) {
      if (!ready.length) return;
      var ids = ready.map(function (r) { return r.attachment_id; });
      return postJson("/api/v1/track/" + encodeURIComponent(token) + "/info", { attachments: ids }, lang)
        .then(function (res) {
          var now = Date.now();
          return Promise.all(ready.map(function (r) {
            return update(r.key, function (rec) {
              rec.lease_until = 0;
              if (res.status >= 200 && res.status < 300) { rec.attached = true; rec.done_at = now; delete rec.blob; }
              else if (res.status === 429 || res.status >= 500 || res.status === 408) backoff(rec, res.retryAfterMs);
              else rec.failed = failed(res.status, res.body);
              rec.last_status = res.status;
              rec.retry_wait_ms = res.status === 429 ? (res.retryAfterMs || 0) : 0;
            });
          })).then(function () { emit(); });
        }, function () {
          return Promise.all(ready.map(function (r) {
            return update(r.key, function (rec) { rec.lease_until = 0; backoff(rec); });
          }))
            .then(function () { emit(); });
        });
    });
  }

  var uploading = null;
  /* Upload and attach every queued file (of `opts.token` only, when given). opts.onProgress
   * (key, loaded, total) while bytes flow, opts.onChange() after each record changes.
   * Resolves {pending, next_at}: how many records still wait and when to try again. */
  api.flushUploads = function (opts) {
    opts = opts || {};
    if (uploading) return uploading;
    var emit = function () { if (opts.onChange) opts.onChange(); };
    uploading = api.uploads(opts.token).then(function (all) {
      var cutoff = Date.now() - KEEP_DONE_MS;
      var old = all.filter(function (r) { return r.attached && r.done_at < cutoff; });
      var cleanup = old.length ? tx(["uploads"], "readwrite", function (s) {
        old.forEach(function (r) { s.delete(r.key); });
      }) : Promise.resolve();
      var todo = all.filter(function (r) { return !r.attached && !r.failed && !r.attachment_id; });
      var chain = cleanup;
      todo.forEach(function (r, i) {
        chain = chain.then(function () {
          return claim(r.key).then(function (rec) {
            if (!rec) return;
            emit();
            var lastRenew = Date.now();
            return uploadBlob(rec, function (loaded, total) {
              if (opts.onProgress) opts.onProgress(rec.key, loaded, total);
              if (Date.now() - lastRenew > LEASE_MS / 4) {
                lastRenew = Date.now();
                update(rec.key, function (x) { x.lease_until = Date.now() + LEASE_MS; }).catch(function () {});
              }
            }).then(function (out) {
              return release(rec.key, function (x) {
                x.attachment_id = out.attachment_id; x.attempts = 0; delete x.blob;
              });
            }, function (err) {
              return release(rec.key, function (x) {
                if (err && err.permanent) x.failed = failed(err.status, err.body);
                else backoff(x, err && err.retryAfterMs);
                x.last_status = (err && err.status) || 0;
              });
            }).then(function () {
              emit();
              // Attach now unless the next file of the same report is about to finish too.
              var next = todo[i + 1];
              if (next && next.token === rec.token && next.size < 300 * 1024) return;
              return attach(rec.token, opts.lang, emit);
            });
          });
        });
      });
      return chain.then(function () {
        var tokens = {};
        return api.uploads(opts.token).then(function (recs) {
          recs.forEach(function (r) { if (r.attachment_id && !r.attached && !r.failed) tokens[r.token] = true; });
          return Object.keys(tokens).reduce(function (c, t) {
            return c.then(function () { return attach(t, opts.lang, emit); });
          }, Promise.resolve());
        });
      }).then(function () { return api.uploads(opts.token); }).then(function (recs) {
        var waiting = recs.filter(function (r) { return !r.attached && !r.failed; });
        var next = waiting.reduce(function (m, r) {
          return Math.min(m, Math.max(r.retry_at || 0, r.lease_until || 0));
        }, Infinity);
        return { pending: waiting.length, next_at: isFinite(next) ? next : null };
      });
    }).finally(function () { uploading = null; });
    return uploading;
  };

  /* Let go of the leases this page holds (on pagehide), so the next page need not wait. */
  api.releaseAll = function () {
    return tx(["uploads"], "readwrite", function (s) {
      var req = s.openCursor();
      req.onsuccess = function () {
        var c = req.result;
        if (!c) return;
        if (c.value.lease_owner === api.owner && c.value.lease_until > Date.now()) {
          c.value.lease_until = 0; c.update(c.value);
        }
        c.continue();
      };
    });
  };
  api.owner = newKey();

  root.CBOutbox = api;
})(typeof self !== "undefined" ? self : window);
