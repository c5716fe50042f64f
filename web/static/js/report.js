/* Report page: category, description, photos (uploaded at once, with progress), GPS on a
 * Leaflet map with a draggable pin, and a send that survives having no connection.
 * Without this script the same form posts to /report and still works. */
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) return;
  var $ = function (id) { return document.getElementById(id); };
  var msgs = JSON.parse(form.getAttribute("data-msgs") || "{}");
  var lang = form.getAttribute("data-lang") || "vi";
  var tileUrl = form.getAttribute("data-tile-url") || "";
  // The server's size limits, checked here first: a refused upload would otherwise cost a
  // cheap phone the whole file's data before the 413 arrives.
  var maxImage = parseInt(form.getAttribute("data-max-image"), 10) || 0;
  var maxVideo = parseInt(form.getAttribute("data-max-video"), 10) || 0;
  var centre = form.getAttribute("data-centre").split(",").map(Number);
  var ADDRESS_ONLY_ACCURACY = 50000;
  var FIELDS = ["category", "description", "media", "location", "address", "name", "phone", "form"];
  var outbox = window.CBOutbox;

  function m(key, vals) {
    var s = msgs[key] || key;
    Object.keys(vals || {}).forEach(function (k) { s = s.split("{" + k + "}").join(String(vals[k])); });
    return s;
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  form.elements.report_id.value = uuid();

  /* A random id this browser keeps, sent with each report: the server counts reports per
   * device and only marks a flood for the operator (schema/abuse.py), never refuses one.
   * Without storage (private mode) the report simply goes without it. */
  function deviceId() {
    try {
      var id = window.localStorage.getItem("canhbao.device");
      if (!id) { id = uuid(); window.localStorage.setItem("canhbao.device", id); }
      return id;
    } catch (e) { return null; }
  }

  // --- errors next to each field ------------------------------------------------------
  function showError(field, text) {
    var el = form.querySelector('[data-error-for="' + field + '"]');
    if (!el) { el = form.querySelector('[data-error-for="form"]'); }
    el.textContent = text || "";
    el.hidden = !text;
    var box = $("f-" + field);
    if (box) box.classList.toggle("has-error", !!text);
    var input = { description: "description", phone: "phone", address: "address", name: "name" }[field];
    if (input) {
      if (text) $(input).setAttribute("aria-invalid", "true"); else $(input).removeAttribute("aria-invalid");
    }
  }
  function clearErrors() {
    FIELDS.forEach(function (f) { showError(f, ""); });
    var top = $("form-errors");
    if (top) top.hidden = true;
  }
  function focusFirstError() {
    for (var i = 0; i < FIELDS.length; i++) {
      var el = form.querySelector('[data-error-for="' + FIELDS[i] + '"]');
      if (el && !el.hidden) {
        var box = $("f-" + FIELDS[i]) || el;
        box.scrollIntoView({ block: "center" });
        var input = box.querySelector("input:not([type=hidden]), textarea");
        if (input) input.focus({ preventScroll: true });
        return;
      }
    }
  }

  // --- photos and videos --------------------------------------------------------------
  // A chosen file is checked and (a photo) made smaller here at once, while the person goes
  // on typing. Nothing is uploaded before the report: send posts the report alone, then the
  // tracking page uploads the files from the outbox's queue (outbox.js).
  var uploads = [];
  var thumbs = $("thumbs");
  var MAX_SIDE = 1600, QUALITY = 0.8, SMALL_ENOUGH = 400 * 1024;

  function setItemState(item, status, text) {
    item.status = status;
    item.li.className = "thumb " + status;
    item.stateEl.textContent = text;
  }
  function fmtSize(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / 1048576).toFixed(1).replace(".", lang === "vi" ? "," : ".") + " MB";
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }
  function fmtDuration(seconds) {
    if (seconds < 60) return m("report.seconds", { n: Math.max(1, Math.round(seconds)) });
    return m("report.minutes", { n: Math.round(seconds / 60) });
  }
  // Upload speed guess for the estimate: the browser's link estimate (a download figure,
  // halved for the uplink), else a slow 3G-like 750 kbit/s.
  function uplinkBytesPerSecond() {
    var c = navigator.connection;
    var mbps = c && c.downlink ? Math.min(c.downlink / 2, 20) : 0.75;
    return Math.max(mbps, 0.1) * 1e6 / 8;
  }

  // The kind of file by its first bytes, as the server decides it.
  function sniff(file) {
    return file.slice(0, 16).arrayBuffer().then(function (buf) {
      var b = new Uint8Array(buf);
      var ascii = function (from, to) { return String.fromCharCode.apply(null, b.slice(from, to)); };
      if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image";
      if (b[0] === 0x89 && ascii(1, 4) === "PNG") return "image";
      if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image";
      if (ascii(4, 8) === "ftyp") return /^(heic|heix|mif1|msf1|hevc|heim|heis|avic)/.test(ascii(8, 12)) ? "image" : "video";
      if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return "video";
      return null;
    }, function () { return null; });
  }

  /* A photo re-encoded as JPEG with its longest side at most MAX_SIDE px (which also drops
   * its metadata, GPS included); the original when it is already small, when the browser
   * cannot decode it (HEIC on most phones) or when re-encoding would not make it smaller. */
  function shrink(file) {
    if (!window.createImageBitmap || file.size <= SMALL_ENOUGH) return Promise.resolve(file);
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bmp) {
      var scale = Math.min(1, MAX_SIDE / Math.max(bmp.width, bmp.height));
      var w = Math.max(1, Math.round(bmp.width * scale)), h = Math.max(1, Math.round(bmp.height * scale));
      var canvas = document.createElement("canvas");
      canvas.width = w; canvas.height = h;
      var g = canvas.getContext("2d");
      g.fillStyle = "#fff"; g.fillRect(0, 0, w, h);
      g.drawImage(bmp, 0, 0, w, h);
      if (bmp.close) bmp.close();
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          resolve(blob && blob.size < file.size ? blob : file);
        }, "image/jpeg", QUALITY);
      });
    }).catch(function () { return file; });
  }

  function prepare(item) {
    var file = item.file;
    item.ready = sniff(file).then(function (kind) {
      if (!kind) { setItemState(item, "failed", m("err.file_type")); return; }
      item.kind = kind;
      return (kind === "image" ? shrink(file) : Promise.resolve(file)).then(function (blob) {
        var limit = kind === "video" ? maxVideo : maxImage;
        if (limit && blob.size > limit) { setItemState(item, "failed", m("err.file_too_large")); return; }
        item.blob = blob;
        if (blob !== file) item.name = item.name.replace(/\.[^.]*$/, "") + ".jpg";
        var text;
        if (kind === "video") {
          text = m("report.video_ready", { size: fmtSize(blob.size),
            time: fmtDuration(blob.size / uplinkBytesPerSecond()) });
        } else if (blob !== file) {
          text = m("report.photo_shrunk", { size: fmtSize(blob.size), original: fmtSize(file.size) });
        } else {
          text = m("report.photo_ready", { size: fmtSize(blob.size) });
        }
        setItemState(item, "ready", text);
      });
    });
  }

  function addFile(file) {
    var item = { key: uuid(), file: file, name: file.name || "photo", status: "processing" };
    var li = document.createElement("li");
    li.className = "thumb processing";
    var url = URL.createObjectURL(file);
    var preview;
    if (file.type.indexOf("video/") === 0) {
      preview = document.createElement("video");
      preview.muted = true; preview.preload = "metadata";
    } else {
      preview = document.createElement("img");
      preview.alt = "";
      preview.addEventListener("error", function () { preview.hidden = true; });
    }
    preview.src = url;
    var name = document.createElement("span");
    name.className = "thumb-name"; name.textContent = item.name;
    var state = document.createElement("span");
    state.className = "thumb-state";
    state.textContent = m("report.preparing");
    var remove = document.createElement("button");
    remove.type = "button"; remove.className = "btn btn-secondary remove";
    remove.textContent = m("report.remove");
    remove.setAttribute("aria-label", m("report.remove") + " " + item.name);
    remove.addEventListener("click", function () {
      URL.revokeObjectURL(url);
      li.remove();
      uploads = uploads.filter(function (u) { return u !== item; });
      if (!uploads.some(function (u) { return u.status === "failed"; })) showError("media", "");
    });
    li.append(preview, name, state, remove);
    thumbs.appendChild(li);
    item.li = li; item.stateEl = state;
    uploads.push(item);
    prepare(item);
  }

  /* The files to send after the report, once every chosen file is prepared. */
  function readyFiles() {
    return Promise.all(uploads.map(function (u) { return u.ready; })).then(function () {
      return uploads.filter(function (u) { return u.status === "ready"; }).map(function (u) {
        return { name: u.name, type: u.blob.type || u.file.type, blob: u.blob, original_size: u.file.size };
      });
    });
  }

  ["files-camera", "files-gallery"].forEach(function (id) {
    var input = $(id);
    input.removeAttribute("name"); // files go through the JSON API, not the form post
    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, addFile);
      input.value = "";
    });
  });

  // --- location -----------------------------------------------------------------------
  var loc = { source: "none", lat: null, lon: null, accuracy: null };
  var map = null, pin = null, circle = null, wardLayer = null;
  var statusEl = $("loc-status");

  function locStatus(text, warn) {
    statusEl.textContent = text;
    statusEl.hidden = !text;
    statusEl.classList.toggle("warn", !!warn);
  }
  function setInputs() {
    $("lat").value = loc.lat == null ? "" : loc.lat.toFixed(6);
    $("lon").value = loc.lon == null ? "" : loc.lon.toFixed(6);
    $("accuracy_m").value = loc.accuracy == null ? "" : String(Math.round(loc.accuracy));
  }
  function loadWard(lat, lon) {
    var url = "/geo/ward?lat=" + encodeURIComponent(lat) + "&lon=" + encodeURIComponent(lon);
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (feature) {
        if (wardLayer) { map.removeLayer(wardLayer); wardLayer = null; }
        var props = (feature && feature.properties) || {};
        showOutside(props.outside_city && loc.source !== "none" ? props : null);
        if (!feature || !feature.geometry) { $("ward-name").hidden = true; return; }
        wardLayer = window.L.geoJSON(feature, {
          interactive: false, style: { color: "#b71c1c", weight: 3, fillColor: "#b71c1c", fillOpacity: 0.06 },
        }).addTo(map);
        $("ward-name").textContent = m("report.ward", { name: feature.properties.name });
        $("ward-name").hidden = loc.source === "none"; // the centre is only a starting point
        if (!tileUrl && loc.source === "gps") {
          var b = wardLayer.getBounds();
          if (circle) b.extend(circle.getBounds());
          map.fitBounds(b, { padding: [10, 10], maxZoom: 17 });
        }
      })
      .catch(function () { /* offline: the pin is enough */ });
  }
  // Outside the city: say plainly that this service covers HCMC, offer the emergency
  // numbers, and keep the report possible (the operator sees it flagged).
  function showOutside(props) {
    var box = $("outside-city");
    box.hidden = !props;
    // The nearest ward helps near the city's edge, not from another province (50 km).
    var near = props && props.name && !(props.distance_m > 50000);
    $("outside-nearest").textContent = near ? m("report.outside_nearest", { name: props.name }) : "";
  }
  function setFromPin(ll) {
    loc = { source: "pin", lat: ll.lat, lon: ll.lng, accuracy: null };
    if (circle) { map.removeLayer(circle); circle = null; }
    setInputs();
    locStatus(m("report.pin_moved"), false);
    showError("location", "");
    loadWard(ll.lat, ll.lng);
  }
  function located(pos) {
    if (loc.source === "pin") return; // the person already chose a place by hand
    var c = pos.coords;
    loc = { source: "gps", lat: c.latitude, lon: c.longitude, accuracy: c.accuracy };
    setInputs();
    $("retry-gps").hidden = true;
    showError("location", "");
    locStatus(m("report.located", { accuracy: Math.max(1, Math.round(c.accuracy)) }), false);
    if (!map) return;
    var ll = [c.latitude, c.longitude];
    pin.setLatLng(ll);
    if (circle) map.removeLayer(circle);
    circle = window.L.circle(ll, { radius: c.accuracy, color: "#0b57d0", weight: 2, fillOpacity: 0.12,
      interactive: false }).addTo(map);
    map.fitBounds(circle.getBounds(), { maxZoom: 17 });
    loadWard(c.latitude, c.longitude);
  }
  function notLocated() {
    if (loc.source !== "none") return;
    locStatus(m("report.location_denied"), true);
    $("retry-gps").hidden = !navigator.geolocation;
    if (map) { pin.setLatLng(centre); map.setView(centre, 14); loadWard(centre[0], centre[1]); }
    if (!map) $("coords").hidden = false;
  }
  function locate() {
    if (!navigator.geolocation) { notLocated(); return; }
    locStatus(m("report.locating"), false);
    navigator.geolocation.getCurrentPosition(located, notLocated,
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 });
  }
  function initMap() {
    var L = window.L;
    if (!L) return; // Leaflet missing: the typed coordinates stay visible
    $("map").hidden = false;
    $("coords").hidden = true;
    map = L.map("map", { attributionControl: !!tileUrl, zoomSnap: 0.5, tap: true }).setView(centre, 12);
    if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19 }).addTo(map);
    var icon = L.divIcon({ className: "pin", iconSize: [48, 48], iconAnchor: [24, 48],
      html: '<svg viewBox="0 0 34 46" aria-hidden="true"><path d="M17 1C8.2 1 1 8.2 1 17c0 12 16 28 16 28s16-16 16-28C33 8.2 25.8 1 17 1z" fill="#b71c1c" stroke="#fff" stroke-width="2"/><circle cx="17" cy="17" r="6" fill="#fff"/></svg>' });
    pin = L.marker(centre, { draggable: true, icon: icon, keyboard: true, autoPan: true,
      title: m("report.map_label"), alt: m("report.map_label") }).addTo(map);
    pin.on("dragend", function () { setFromPin(pin.getLatLng()); });
    map.on("click", function (e) { pin.setLatLng(e.latlng); setFromPin(e.latlng); });
  }
  $("retry-gps").addEventListener("click", function () { loc.source = "none"; locate(); });
  // Typed coordinates (when the map could not load) count as a chosen place.
  ["lat", "lon"].forEach(function (id) {
    $(id).addEventListener("change", function () {
      var lat = parseFloat($("lat").value.replace(",", ".")), lon = parseFloat($("lon").value.replace(",", "."));
      if (isFinite(lat) && isFinite(lon)) loc = { source: "typed", lat: lat, lon: lon, accuracy: null };
    });
  });

  // --- validation ---------------------------------------------------------------------
  function validate() {
    var errors = {};
    var cat = form.querySelector('input[name="category"]:checked');
    if (!cat) errors.category = m("err.category");
    var desc = $("description").value.trim();
    if (!desc) errors.description = m("err.description");
    if (loc.source === "none" && !$("address").value.trim()) errors.location = m("err.location");
    // The phone is never checked here: whatever is typed goes with the report (the server
    // keeps a number it cannot read, flagged for the operator); it must not block it.
    if (uploads.some(function (u) { return u.status === "failed"; })) errors.media = m("err.attachments");
    return errors;
  }
  // A fixed field loses its message at once (a chosen category, typed words, a fixed phone).
  Array.prototype.forEach.call(form.querySelectorAll('input[name="category"]'), function (r) {
    r.addEventListener("change", function () { showError("category", ""); });
  });
  $("description").addEventListener("input", function () {
    if ($("description").value.trim()) showError("description", "");
  });
  $("address").addEventListener("input", function () {
    if ($("address").value.trim()) showError("location", "");
  });

  function fieldOf(name) {
    var n = String(name || "");
    if (/^(location|lat|lon|accuracy)/.test(n) || n.indexOf("location") >= 0) return "location";
    if (n.indexOf("phone") >= 0) return "phone";
    if (n.indexOf("name") >= 0) return "name";
    if (n.indexOf("attachment") >= 0) return "media";
    if (n.indexOf("description") >= 0) return "description";
    if (n.indexOf("category") >= 0) return "category";
    if (n.indexOf("address") >= 0) return "address";
    return "form";
  }
  function showServerErrors(body) {
    var fields = (body && body.fields) || {};
    var shown = false;
    if (Array.isArray(fields)) {
      fields.forEach(function (f) {
        var loc2 = f.field || (Array.isArray(f.loc) ? f.loc.filter(function (p) { return p !== "body"; }).join(".") : f.loc);
        var text = (lang === "en" && f.message_en) ? f.message_en : (f.message || f.msg);
        showError(fieldOf(loc2), text || m("err.generic")); shown = true;
      });
    } else {
      Object.keys(fields).forEach(function (k) {
        var v = fields[k];
        showError(fieldOf(k), Array.isArray(v) ? v.join(" ") : String(v)); shown = true;
      });
    }
    if (!shown) showError("form", (body && (body.detail || body.error)) || m("err.generic"));
    focusFirstError();
  }

  // --- sending, with the outbox -------------------------------------------------------
  var sendBtn = $("send");
  var sendLabel = sendBtn.textContent;
  var waiting = {}; // report_ids handed to the outbox from this page
  var banner = $("outbox-status");
  var retryTimer = null;

  function buildEntry(silent, category) {
    var lat = loc.lat, lon = loc.lon, acc = loc.accuracy;
    if (loc.source === "none") { lat = centre[0]; lon = centre[1]; acc = ADDRESS_ONLY_ACCURACY; }
    var body = {
      report_id: form.elements.report_id.value,
      category: category || form.querySelector('input[name="category"]:checked').value,
      description: $("description").value.trim(),
      location: { lat: lat, lon: lon, accuracy_m: acc == null ? null : Math.round(acc * 10) / 10 },
    };
    var address = $("address").value.trim();
    if (address) body.address = address;
    var name = $("name").value.trim(), phone = $("phone").value.trim();
    if (name || phone) {
      body.reporter = {};
      if (name) body.reporter.name = name;
      if (phone) body.reporter.phone = phone;
    }
    if (silent) body.silent = true;
    var device = deviceId();
    if (device) body.device_id = device;
    return { report_id: body.report_id, body: body, files: [], lang: lang, created_at: new Date().toISOString() };
  }

  function busy(on) {
    sendBtn.disabled = on;
    sendBtn.textContent = on ? m("report.sending") : sendLabel;
  }

  function renderOutbox() {
    if (!outbox) return Promise.resolve();
    return Promise.all([outbox.all(), outbox.sent()]).then(function (res) {
      var pending = res[0].filter(function (e) { return !e.refused; });
      pending.forEach(function (e) { waiting[e.report_id] = true; });
      var refused = res[0].filter(function (e) { return e.refused; });
      if (refused.length && !restoring && (form.hidden || !$("description").value.trim())) {
        restore(refused[0]);
      }
      var sent = res[1].sort(function (a, b) { return a.at < b.at ? 1 : -1; });
      banner.textContent = "";
      var justSent = sent.filter(function (s) { return waiting[s.report_id]; });
      if (pending.length) {
        banner.className = "banner pending";
        var p = document.createElement("p");
        // The server answered "later" (503/429 with Retry-After), or there was no answer.
        var later = pending.some(function (e) { return e.retry_at; });
        p.textContent = m(later ? "report.pending_server" : "report.pending");
        p.id = "pending-text";
        banner.appendChild(p);
      } else if (justSent.length) {
        banner.className = "banner ok";
      }
      justSent.forEach(function (s) {
        var p = document.createElement("p");
        p.className = "sent";
        p.textContent = m("report.sent", { code: s.tracking_code }) + " ";
        var a = document.createElement("a");
        a.href = s.status_url; a.textContent = m("report.open_tracking"); a.className = "tracking-link";
        p.appendChild(a);
        banner.appendChild(p);
      });
      banner.hidden = !(pending.length || justSent.length);
      var list = $("my-reports-list");
      list.textContent = "";
      sent.slice(0, 5).forEach(function (s) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = s.status_url; a.textContent = s.tracking_code;
        li.appendChild(a);
        list.appendChild(li);
      });
      $("my-reports").hidden = sent.length === 0;
      if (pending.length && !retryTimer) retryTimer = setInterval(flush, 10000);
      if (!pending.length && retryTimer) { clearInterval(retryTimer); retryTimer = null; }
    }).catch(function () {});
  }

  // A waiting report the server refused (a file too large, say): put it back in the form
  // with the server's messages, so nothing typed is lost, and let the person fix it.
  var restoring = false;
  function restore(entry) {
    restoring = true;
    var b = entry.body;
    form.elements.report_id.value = entry.report_id;
    var radio = form.querySelector('input[name="category"][value="' + b.category + '"]');
    if (radio) radio.checked = true;
    $("description").value = b.description || "";
    $("address").value = b.address || "";
    $("name").value = (b.reporter && b.reporter.name) || "";
    $("phone").value = (b.reporter && b.reporter.phone) || "";
    if (b.location && b.location.accuracy_m !== 50000) {
      loc = { source: "pin", lat: b.location.lat, lon: b.location.lon, accuracy: b.location.accuracy_m };
      setInputs();
      if (map) { pin.setLatLng([loc.lat, loc.lon]); map.setView([loc.lat, loc.lon], 16); }
    }
    (entry.files || []).forEach(function (f) { if (f.blob) addFile(new File([f.blob], f.name, { type: f.type })); });
    outbox.remove(entry.report_id).catch(function () {});
    form.hidden = false;
    $("new-report-wrap").hidden = true;
    var body = entry.refused.body || {};
    if (entry.refused.status === 413) body = { fields: [{ field: "attachments", message: m("err.file_too_large") }] };
    if (entry.refused.status === 415) body = { fields: [{ field: "attachments", message: m("err.file_type") }] };
    showServerErrors(body);
    restoring = false;
  }

  function flush() {
    if (!outbox) return Promise.resolve();
    return outbox.flush().then(renderOutbox, renderOutbox).then(function () {
      // Files of reports already sent (a page closed mid-upload) go on in the background.
      return outbox.flushUploads({ lang: lang }).catch(function () {});
    });
  }
  window.addEventListener("pagehide", function () { if (outbox) outbox.releaseAll().catch(function () {}); });

  function requestSync() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.ready.then(function (reg) {
      if (reg.sync && reg.sync.register) return reg.sync.register("send-reports");
    }).catch(function () {});
  }

  function newReport() {
    form.reset();
    form.elements.report_id.value = uuid();
    uploads.forEach(function (u) { u.li.remove(); });
    uploads = [];
  }

  function deferred(entry) {
    // No connection (or the server is down): the report waits in the outbox.
    waiting[entry.report_id] = true;
    newReport();
    form.hidden = true;
    $("new-report-wrap").hidden = false;
    busy(false);
    requestSync();
    renderOutbox().then(function () { banner.scrollIntoView({ block: "start" }); });
  }

  function sendDirect(entry) {
    // Outbox unavailable (no IndexedDB): send straight away.
    return fetch("/api/v1/reports", { method: "POST", headers: { "Content-Type": "application/json",
      "Accept-Language": lang }, body: JSON.stringify(entry.body) })
      .then(function (r) {
        return r.json().then(function (b) { return r.ok ? { ok: true, accepted: b } : { ok: false, status: r.status, body: b }; });
      });
  }

  /* Without IndexedDB there is no queue: the files go now, one by one, then are attached in
   * one call; a file that fails is dropped (the report itself is already in). */
  function uploadNow(accepted, list) {
    return list.reduce(function (chain, f) {
      return chain.then(function (ids) {
        var data = new FormData();
        data.append("file", f.blob, f.name);
        return fetch("/api/v1/attachments", { method: "POST", body: data }).then(function (r) {
          return r.ok ? r.json().then(function (b) { ids.push(b.attachment_id); return ids; }) : ids;
        }, function () { return ids; });
      });
    }, Promise.resolve([])).then(function (ids) {
      if (!ids.length) return;
      return fetch("/api/v1/track/" + encodeURIComponent(accepted.tracking_token) + "/info", {
        method: "POST", headers: { "Content-Type": "application/json", "Accept-Language": lang },
        body: JSON.stringify({ attachments: ids }),
      }).catch(function () {});
    });
  }

  /* Send the report now; its files follow from the upload queue once it is accepted. */
  function sendReport(entry, files) {
    var stored = outbox ? outbox.put(entry).then(function () { return true; }, function () { return false; })
      : Promise.resolve(false);
    return stored.then(function (inOutbox) {
      var sending = inOutbox ? outbox.send(entry) : sendDirect(entry);
      return sending.then(function (res) {
        if (!res.ok) {
          if (inOutbox) outbox.remove(entry.report_id).catch(function () {});
          return res;
        }
        // Accepted: queue the files (prepared meanwhile), then the tracking page sends them.
        return files.then(function (list) {
          if (!list.length) return res;
          if (!inOutbox) return uploadNow(res.accepted, list).then(function () { return res; });
          return outbox.queueUploads(res.accepted, list).then(function () { return res; });
        });
      }, function (err) {
        if (!inOutbox) throw err;
        // No connection: the report waits in the outbox, its files with it.
        return files.then(function (list) {
          entry.files = list;
          return outbox.put(entry);
        }).then(function () { return { ok: false, deferred: true }; });
      });
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (sendBtn.disabled) return;
    clearErrors();
    var errors = validate();
    if (Object.keys(errors).length) {
      Object.keys(errors).forEach(function (k) { showError(k, errors[k]); });
      focusFirstError();
      return;
    }
    busy(true);
    var entry = buildEntry(false);
    sendReport(entry, readyFiles()).then(function (res) {
      if (res.ok) { window.location.assign(res.accepted.status_url); return; }
      if (res.deferred) { deferred(entry); return; }
      busy(false);
      showServerErrors(res.body);
    }, function () { busy(false); showError("form", m("err.network")); });
  });

  // --- silent SOS ----------------------------------------------------------------------
  // One press (or a long press on a category) sends at once: GPS, the category, a fixed
  // description. No sound, no vibration, no focus jumps; the confirmation is plain text.
  // Details can be added later from the tracking page.
  var SOS_TEXT = "SOS — báo tin im lặng";
  var sosSent = false;

  function sosLocation() {
    if (loc.source !== "none") return Promise.resolve();
    if (!navigator.geolocation) return Promise.resolve();
    return new Promise(function (resolve) {
      var t = setTimeout(resolve, 4000);
      navigator.geolocation.getCurrentPosition(function (pos) {
        clearTimeout(t);
        var c = pos.coords;
        loc = { source: "gps", lat: c.latitude, lon: c.longitude, accuracy: c.accuracy };
        resolve();
      }, function () { clearTimeout(t); resolve(); },
      { enableHighAccuracy: true, timeout: 4000, maximumAge: 60000 });
    });
  }

  function sosShow(key, code, url) {
    var done = $("sos-done");
    $("sos-text").textContent = m(key);
    $("sos-code").textContent = code ? m("sos.code", { code: code }) : "";
    $("sos-details").href = url || "/";
    $("sos-details").hidden = !url;
    Array.prototype.forEach.call(document.querySelectorAll("#main > *"), function (el) {
      if (el !== done && !el.hidden) { el.hidden = true; sosHidden.push(el); }
    });
    done.hidden = false;
  }
  var sosHidden = [];
  function sosUndo() {
    // Not sent (refused): the page comes back as it was, with a plain note, to try again.
    sosHidden.forEach(function (el) { el.hidden = false; });
    sosHidden = [];
    $("sos-done").hidden = true;
    $("sos-hint").textContent = m("sos.failed");
    sosSent = false;
  }

  function sos(category) {
    if (sosSent) return;
    sosSent = true;
    var chosen = form.querySelector('input[name="category"]:checked');
    var cat = category || (chosen && chosen.value) || "crime";
    var typed = $("description").value.trim();
    sosShow("sos.sending", null, null);
    sosLocation().then(function () {
      var entry = buildEntry(true, cat);
      entry.body.description = typed ? SOS_TEXT + ". " + typed : SOS_TEXT;
      var files = readyFiles();
      return sendReport(entry, files).then(function (res) {
        if (res.ok) {
          sosShow("sos.sent", res.accepted.tracking_code, res.accepted.status_url);
          if (outbox) outbox.flushUploads({ lang: lang }).catch(function () {});
        } else if (res.deferred) {
          requestSync();
          sosShow("sos.pending", null, null);
        } else {
          sosUndo();
        }
      });
    }).catch(sosUndo);
  }

  $("sos-box").hidden = false;
  $("sos").addEventListener("click", function () { sos(null); });
  Array.prototype.forEach.call(form.querySelectorAll("label.cat"), function (label) {
    var timer = null;
    var input = label.querySelector("input");
    var cancel = function () { clearTimeout(timer); timer = null; };
    label.addEventListener("pointerdown", function () {
      cancel();
      timer = setTimeout(function () { timer = null; sos(input.value); }, 1200);
    });
    ["pointerup", "pointerleave", "pointercancel"].forEach(function (t) { label.addEventListener(t, cancel); });
    label.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  });

  $("new-report").addEventListener("click", function () {
    form.hidden = false;
    $("new-report-wrap").hidden = true;
    form.scrollIntoView({ block: "start" });
  });
  window.addEventListener("online", flush);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", function (e) {
      if (e.data && e.data.type === "outbox-changed") renderOutbox();
    });
  }

  initMap();
  locate();
  flush();
})();
