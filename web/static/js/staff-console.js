/* Operator console: the Leaflet map of open incidents (markers from the list partial's
 * data-markers), selection, the detail panel's mini map with the ward outline, and live
 * refresh of the selected incident. */
(function () {
  "use strict";
  var S = window.CanhBaoStaff;
  var L = window.L;
  var mapEl = document.getElementById("map");
  var map = null, layer = null, fitted = false, mini = null;
  var shown = (document.getElementById("detail") || { getAttribute: function () { return ""; } })
    .getAttribute("data-incident");
  var colours = {};
  try { colours = JSON.parse(mapEl.getAttribute("data-colours") || "{}"); } catch (e) { colours = {}; }

  function tiles(m) {
    var url = mapEl.getAttribute("data-tile-url");
    if (url) L.tileLayer(url, { maxZoom: 19 }).addTo(m);
  }

  function select(id) {
    var input = document.getElementById("f-selected");
    if (input) input.value = id;
    document.querySelectorAll("#incident-list li.inc").forEach(function (li) {
      li.classList.toggle("selected", li.getAttribute("data-id") === id);
    });
    if (window.history && window.history.replaceState) {
      var u = new URL(window.location.href);
      u.searchParams.set("selected", id);
      window.history.replaceState(null, "", u.pathname + u.search);
    }
  }

  function openDetail(id) {
    select(id);
    window.htmx.ajax("GET", "/console/incidents/" + id, { target: "#detail", swap: "outerHTML" });
  }

  /* Flash the rows that were not in the list before this refresh. */
  var known = null;
  function markFresh() {
    var rows = document.querySelectorAll("#incident-list li.inc");
    var now = {};
    rows.forEach(function (li) {
      var id = li.getAttribute("data-id");
      now[id] = true;
      if (known && !known[id]) li.classList.add("fresh");
    });
    known = now;
  }

  function drawMarkers() {
    if (!map) return;
    var list = document.getElementById("incident-list");
    var markers = [];
    try { markers = JSON.parse(list.getAttribute("data-markers") || "[]"); } catch (e) { markers = []; }
    layer.clearLayers();
    var selected = (document.getElementById("f-selected") || {}).value;
    var bounds = [];
    markers.forEach(function (m) {
      var mk = L.circleMarker([m.lat, m.lon], {
        radius: m.id === selected ? 11 : (m.overdue ? 9 : 7),
        color: m.overdue ? "#b00020" : "#ffffff", weight: m.overdue ? 3 : 2,
        fillColor: m.colour || colours[m.cat] || "#455a64", fillOpacity: 0.9,
        className: "mk mk-" + m.cat
      });
      mk.bindTooltip(m.code);
      mk.on("click", function () { openDetail(m.id); });
      mk.addTo(layer);
      bounds.push([m.lat, m.lon]);
    });
    mapEl.setAttribute("data-marker-count", String(markers.length));
    if (!fitted && bounds.length) {
      fitted = true;
      map.fitBounds(bounds, { padding: [30, 30], maxZoom: 15, animate: false });
    }
  }

  function miniMap() {
    var el = document.getElementById("mini-map");
    if (mini) { mini.remove(); mini = null; }
    if (!el || !L) return;
    var lat = parseFloat(el.getAttribute("data-lat")), lon = parseFloat(el.getAttribute("data-lon"));
    if (isNaN(lat) || isNaN(lon)) return;
    mini = L.map(el, { zoomControl: false, attributionControl: false, zoomAnimation: false,
      fadeAnimation: false, markerZoomAnimation: false }).setView([lat, lon], 15);
    tiles(mini);
    var acc = parseFloat(el.getAttribute("data-accuracy")) || 0;
    if (acc > 0 && acc < 5000) L.circle([lat, lon], { radius: acc, weight: 1, color: "#0b57d0", fillOpacity: 0.08 }).addTo(mini);
    L.circleMarker([lat, lon], { radius: 8, color: "#fff", weight: 2,
      fillColor: el.getAttribute("data-colour") || "#b71c1c", fillOpacity: 1 }).addTo(mini);
    var m = mini;
    reporterMarker = null;
    var rlat = parseFloat(el.getAttribute("data-rl-lat")), rlon = parseFloat(el.getAttribute("data-rl-lon"));
    if (!isNaN(rlat) && !isNaN(rlon)) {
      showReporter({ lat: rlat, lon: rlon, accuracy_m: parseFloat(el.getAttribute("data-rl-accuracy")) || 0 }, false);
    }
    fetch("/geo/ward?lat=" + lat + "&lon=" + lon, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (f) {
        if (!f || !f.geometry || m !== mini) return;
        var outline = L.geoJSON(f, { style: { color: "#37474f", weight: 2, fill: false, dashArray: "4 4" } }).addTo(m);
        var b = outline.getBounds();
        if (b.isValid()) m.fitBounds(b.extend([lat, lon]), { padding: [10, 10], animate: false });
      }).catch(function () {});
  }

  /* The reporter's live location on the mini map: a distinct marker (blue ring) with its
   * accuracy circle, moved in place when a `reporter.location` event comes (no refresh). */
  var reporterMarker = null;
  function showReporter(p, live) {
    var el = document.getElementById("mini-map");
    if (!mini || !el || isNaN(p.lat) || isNaN(p.lon)) return;
    var ll = [p.lat, p.lon], acc = Math.max(0, p.accuracy_m || 0);
    if (!reporterMarker) {
      reporterMarker = {
        circle: L.circle(ll, { radius: acc, weight: 1, color: "#00838f", fillColor: "#00838f", fillOpacity: 0.12 }).addTo(mini),
        dot: L.circleMarker(ll, { radius: 7, color: "#00838f", weight: 3, fillColor: "#fff", fillOpacity: 1 }).addTo(mini)
      };
    } else {
      reporterMarker.circle.setLatLng(ll).setRadius(acc);
      reporterMarker.dot.setLatLng(ll);
    }
    var label = document.getElementById("reporter-loc-text");
    reporterMarker.dot.bindTooltip(label ? label.textContent : "");
    el.setAttribute("data-rl-lat", String(p.lat));
    el.setAttribute("data-rl-lon", String(p.lon));
    if (live) mini.panTo(ll, { animate: false });
  }
  function reporterMoved(d) {
    var line = document.getElementById("reporter-loc"), text = document.getElementById("reporter-loc-text");
    if (!line || !text) return;
    var at = new Date(d.received_at || Date.now());
    var time = at.toLocaleTimeString("en-GB", { timeZone: "Asia/Ho_Chi_Minh", hour12: false });
    text.textContent = S.msg("staff.d.reporter_location").replace("{time}", time) + " · " +
      S.msg("staff.d.reporter_location_acc").replace("{acc}", String(Math.round(d.accuracy_m || 0)));
    line.hidden = false;
    line.setAttribute("data-updated", at.toISOString());
    showReporter({ lat: d.lat, lon: d.lon, accuracy_m: d.accuracy_m }, true);
  }

  if (L && mapEl) {
    map = L.map(mapEl, { zoomControl: true, attributionControl: false, preferCanvas: false })
      .setView([10.7769, 106.7009], 11);
    tiles(map);
    map.createPane("wards").classList.add("ward-pane");  /* below the markers */
    var wards = L.layerGroup().addTo(map);
    layer = L.layerGroup().addTo(map);
    drawMarkers();
    markFresh();
    fetch("/console/wards.geojson", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (fc) {
        if (!fc) return;
        L.geoJSON(fc, {
          pane: "wards",
          style: { color: "#78909c", weight: 1, fillColor: "#ffffff", fillOpacity: 0.55 },
          onEachFeature: function (f, l) { l.bindTooltip(f.properties.name, { sticky: true }); }
        }).addTo(wards);
        mapEl.setAttribute("data-wards", String(fc.features.length));
      }).catch(function () {});
  }
  miniMap();

  /* The incident the operator chose last (a list or duplicate link). A refresh of the panel
   * asked for before that click (a live event for the incident shown until then) can be
   * answered after it: it must not put the old incident back over the operator's choice. */
  var wanted = shown;
  var PANEL = /^\/console\/incidents\/([^/?#]+)$/;
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (!elt || !elt.getAttribute || elt.getAttribute("hx-target") !== "#detail") return;
    var m = (elt.getAttribute("hx-get") || "").match(PANEL);
    if (m) wanted = m[1];
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    var t = e.detail.target;
    if (!t || t.id !== "detail" || !wanted) return;
    var m = ((e.detail.pathInfo && e.detail.pathInfo.requestPath) || "").match(PANEL);
    if (m && m[1] !== wanted) e.detail.shouldSwap = false;
  });

  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.inc-link");
    if (a) select(a.closest("li").getAttribute("data-id"));
  });

  /* Take the mini map down before its element leaves the page (Leaflet needs it), and
   * remember which flood groups are open so a live refresh keeps them open. */
  var openGroups = {};
  document.addEventListener("htmx:beforeSwap", function (e) {
    var t = e.detail.target;
    if (mini && t && t.id === "detail" && e.detail.shouldSwap) { mini.remove(); mini = null; }
    if (t && t.id === "incident-list") {
      openGroups = {};
      t.querySelectorAll("li.grp details[open]").forEach(function (d) {
        openGroups[d.closest("li").getAttribute("data-group")] = true;
      });
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("#incident-list li.grp").forEach(function (li) {
      var d = li.querySelector("details");
      if (d && openGroups[li.getAttribute("data-group")]) d.open = true;
    });
  });

  document.addEventListener("htmx:afterSettle", function (e) {
    var t = e.detail.target || e.target;
    if (!t) return;
    if (document.getElementById("incident-list") && (t.id === "incident-list" || t.contains(document.getElementById("incident-list")))) {
      drawMarkers();
      markFresh();
    }
    if (t.id === "detail") {
      var id = t.getAttribute("data-incident");
      if (id && id !== shown && t.parentNode) t.parentNode.scrollTop = 0;
      shown = id;
      if (id) select(id);
      miniMap();
      drawMarkers();
    }
  });

  /* A live refresh patched the list in place (console-queue.js): the map follows. */
  document.addEventListener("queue-patched", drawMarkers);

  /* Someone else changed the incident first (412/409): the toast says what; the panel
   * and the list show it as it now is. */
  document.addEventListener("incident-stale", function () {
    var detail = document.getElementById("detail");
    if (detail) {
      detail.setAttribute("data-force", "1");
      window.htmx.trigger(detail, "refresh");
    }
    var list = document.getElementById("incident-list");
    if (list) window.htmx.trigger(list, "refresh");
  });

  /* After one's own action the list follows at once, without waiting for the feed. */
  document.addEventListener("incident-changed", function () {
    var list = document.getElementById("incident-list");
    if (list) window.htmx.trigger(list, "refresh");
  });

  document.addEventListener("staff-event", function (e) {
    var d = e.detail.data || {};
    if (e.detail.kind === "incident.new" && d.tracking_code) {
      S.toast(S.msg("staff.new") + ": " + d.tracking_code, "info");
    }
    var detail = document.getElementById("detail");
    if (detail && d.incident_id && detail.getAttribute("data-incident") === d.incident_id) {
      if (e.detail.kind === "reporter.location") reporterMoved(d);
      else window.htmx.trigger(detail, "refresh");
    }
  });
})();
