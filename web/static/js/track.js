/* Tracking page: share or copy the link; show chosen file names. HTMX refreshes the status. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var shareBtn = $("share-btn"), copyBtn = $("copy-btn"), status = $("share-status");
  var url = shareBtn ? shareBtn.getAttribute("data-share-url") : "";
  if (shareBtn && navigator.share) {
    shareBtn.hidden = false;
    shareBtn.addEventListener("click", function () {
      navigator.share({ title: shareBtn.getAttribute("data-title"), url: url }).catch(function () {});
    });
  }
  if (copyBtn) {
    copyBtn.hidden = false;
    copyBtn.addEventListener("click", function () {
      var done = function () { status.textContent = copyBtn.getAttribute("data-copied"); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(url).then(done, function () {
          $("share-url").select(); document.execCommand("copy"); done();
        });
      } else {
        $("share-url").select(); document.execCommand("copy"); done();
      }
    });
  }
  // The 15 s refresh never replaces what the person is using: a swap of #status waits while
  // focus is inside it (the add-info form and the cancel box live outside it).
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail && e.detail.target;
    if (target && target.id === "status" && target.contains(document.activeElement)) {
      e.detail.shouldSwap = false;
    }
  });
  /* Answering a staff message: sent with fetch to the tracking API (the form posts without
   * JavaScript). The status then refreshes, where the answer shows in the story. */
  var upBox = $("uploads");
  var tokenOf = upBox ? upBox.getAttribute("data-token") : "";
  var langOf = upBox ? upBox.getAttribute("data-lang") || "vi" : "vi";
  var pageMsgs = {};
  try { pageMsgs = JSON.parse((upBox && upBox.getAttribute("data-msgs")) || "{}"); } catch (err) { pageMsgs = {}; }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.classList || !form.classList.contains("answer-form") || !window.fetch || !tokenOf) return;
    e.preventDefault();
    var seq = parseInt(form.getAttribute("data-reply-to"), 10);
    var box = form.querySelector("textarea");
    var err = form.querySelector(".error");
    var send = form.querySelector("button[type=submit]");
    var text = (box.value || "").trim();
    function fail(message) { err.textContent = message; err.hidden = false; send.disabled = false; }
    if (!text) { fail(pageMsgs["err.text"] || "!"); box.focus(); return; }
    send.disabled = true; err.hidden = true;
    fetch("/api/v1/track/" + encodeURIComponent(tokenOf) + "/info", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "Accept-Language": langOf },
      body: JSON.stringify({ text: text, reply_to: seq })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, body: j }; });
    }).then(function (res) {
      if (!res.ok) {
        var f = res.body && res.body.fields && res.body.fields[0];
        fail((f && f.message) || (res.body && res.body.detail) || pageMsgs["err.busy"] || "!");
        return;
      }
      box.value = "";
      var sent = $("answer-sent");
      if (!sent && upBox) {  // the same banner as after a form post
        sent = document.createElement("p");
        sent.id = "answer-sent";
        sent.className = "banner ok";
        sent.setAttribute("role", "status");
        sent.textContent = pageMsgs["track.answer_sent"] || "";
        upBox.parentNode.insertBefore(sent, upBox);
      }
      if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
      var status = $("status");
      if (window.htmx && status && status.hasAttribute("hx-get")) window.htmx.trigger(status, "refresh");
    }, function () { fail(pageMsgs["track.answer_failed"] || "!"); });
  });

  var files = $("info-files");
  if (files) {
    files.addEventListener("change", function () {
      $("info-files-list").textContent = Array.prototype.map.call(files.files, function (f) { return f.name; }).join(", ");
    });
  }
})();

/* Files that follow the report: the queue in IndexedDB (outbox.js) is sent from here, each
 * file with its progress, and the page says where it stands ("đang tải ảnh 2/3"). A page
 * closed mid-upload loses nothing: the next visit, the report page or the service worker
 * sends what is left. */
(function () {
  "use strict";
  var box = document.getElementById("uploads");
  var outbox = window.CBOutbox;
  if (!box || !outbox) return;
  var token = box.getAttribute("data-token");
  var lang = box.getAttribute("data-lang") || "vi";
  var msgs = JSON.parse(box.getAttribute("data-msgs") || "{}");
  var list = document.getElementById("uploads-list");
  var statusEl = document.getElementById("uploads-status");
  var progress = {};   // key → fraction, while this page sends it
  var items = {};      // key → {li, bar, state}
  var timer = null;
  var attachedSeen = null;

  function m(key, vals) {
    var s = msgs[key] || key;
    Object.keys(vals || {}).forEach(function (k) { s = s.split("{" + k + "}").join(String(vals[k])); });
    return s;
  }
  function kindOf(rec) { return (rec.type || "").indexOf("video/") === 0 ? "video" : "photo"; }

  function itemFor(rec) {
    var it = items[rec.key];
    if (it) return it;
    var li = document.createElement("li");
    li.className = "thumb";
    if (rec.blob && kindOf(rec) === "photo") {
      var img = document.createElement("img");
      img.alt = "";
      img.src = URL.createObjectURL(rec.blob);
      li.appendChild(img);
    }
    var name = document.createElement("span");
    name.className = "thumb-name"; name.textContent = rec.name;
    var bar = document.createElement("progress");
    bar.max = 1; bar.value = 0;
    bar.setAttribute("aria-label", rec.name);
    var state = document.createElement("span");
    state.className = "thumb-state";
    li.append(name, bar, state);
    list.appendChild(li);
    it = items[rec.key] = { li: li, bar: bar, state: state };
    return it;
  }

  function render() {
    return outbox.uploads(token).then(function (recs) {
      box.hidden = recs.length === 0;
      if (!recs.length) return recs;
      var now = Date.now();
      var n = recs.length, done = 0, current = null, wait429 = 0, failedCount = 0;
      recs.forEach(function (rec, i) {
        var it = itemFor(rec);
        var status, text;
        if (rec.attached) { status = "done"; text = m("up.done"); done++; }
        else if (rec.failed) {
          status = "failed"; failedCount++;
          text = rec.failed.status === 413 ? m("err.file_too_large")
            : rec.failed.status === 415 ? m("err.file_type")
            : rec.failed.status === 409 ? m("up.closed") : (rec.failed.detail || m("report.upload_failed"));
        } else if (progress[rec.key] != null && !rec.attachment_id) {
          status = "uploading";
          text = Math.round(progress[rec.key] * 100) + "% · " + m("up.size", { size: fmt(rec.size) });
          var eta = remaining(rec.key);
          if (eta) text += " · " + m("up.eta", { time: eta });
          if (current === null) current = i;
        } else if (rec.retry_at > now) {
          status = "later";
          if (rec.last_status === 429) { wait429 = Math.max(wait429, rec.retry_at - now); text = m("up.busy"); }
          else text = m("report.upload_later");
        } else if (rec.attachment_id) { status = "uploading"; text = m("up.attaching"); if (current === null) current = i; }
        else { status = "queued"; text = m("up.queued", { size: fmt(rec.size) }); }
        it.li.className = "thumb " + status;
        it.bar.hidden = status !== "uploading";
        it.bar.value = rec.attachment_id || rec.attached ? 1 : (progress[rec.key] || 0);
        it.state.textContent = text;
      });
      var line;
      if (done === n) line = m("up.all_done", { n: n });
      else if (current !== null) {
        line = m(kindOf(recs[current]) === "video" ? "up.sending_video" : "up.sending_photo",
          { i: current + 1, n: n });
      } else if (wait429) line = m("up.wait", { s: Math.ceil(wait429 / 1000), done: done, n: n });
      else if (done + failedCount === n) line = m("up.some_failed", { done: done, n: n });
      else line = m("up.later", { done: done, n: n });
      statusEl.textContent = line;
      statusEl.className = "banner " + (done === n ? "ok" : failedCount ? "error" : "pending");
      if (attachedSeen !== null && done > attachedSeen && window.htmx && document.querySelector("#status[hx-get]")) {
        window.htmx.trigger("#status", "refresh");  // the count and the story show the new files
      }
      attachedSeen = done;
      return recs;
    });
  }
  function fmt(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1).replace(".", lang === "vi" ? "," : ".") + " MB";
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  // Time left for a file, from the speed measured while it goes (after a few seconds).
  var began = {};
  function remaining(key) {
    var b = began[key];
    if (!b || !b.loaded || Date.now() - b.at < 3000) return "";
    var rate = b.loaded / ((Date.now() - b.at) / 1000);
    var left = (b.total - b.loaded) / Math.max(rate, 1);
    if (left < 1) return "";
    return left < 60 ? m("report.seconds", { n: Math.round(left) }) : m("report.minutes", { n: Math.round(left / 60) });
  }

  var lastPaint = 0;
  function run() {
    clearTimeout(timer); timer = null;
    outbox.flushUploads({
      token: token, lang: lang,
      onProgress: function (key, loaded, total) {
        progress[key] = total ? loaded / total : 0;
        if (!began[key]) began[key] = { at: Date.now(), loaded: 0, total: total };
        began[key].loaded = loaded; began[key].total = total;
        if (Date.now() - lastPaint > 250) { lastPaint = Date.now(); render(); }
      },
      onChange: render,
    }).then(function (res) {
      progress = {}; began = {};
      return render().then(function () {
        if (res.pending) {
          var delay = res.next_at ? Math.max(1000, res.next_at - Date.now()) : 5000;
          timer = setTimeout(run, delay);
          if (!navigator.onLine && "serviceWorker" in navigator) {
            navigator.serviceWorker.ready.then(function (reg) {
              if (reg.sync && reg.sync.register) return reg.sync.register("send-reports");
            }).catch(function () {});
          }
        }
      });
    }, function () { timer = setTimeout(run, 5000); });
  }
  window.addEventListener("online", run);
  window.addEventListener("pagehide", function () { outbox.releaseAll().catch(function () {}); });
  // A second tick of the wait-for-429 countdown keeps its seconds true.
  setInterval(function () {
    if (!box.hidden && statusEl.className.indexOf("ok") < 0) render().catch(function () {});
  }, 1000);
  render().then(run, function () { box.hidden = true; });  // no IndexedDB: nothing queued here
})();
