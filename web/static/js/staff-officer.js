/* Officer's phone page: distance to each incident from the phone's GPS, and photo upload
 * for notes through the API (/api/v1/attachments), before the note is sent. */
(function () {
  "use strict";
  var S = window.CanhBaoStaff;
  var here = null;

  function metres(lat1, lon1, lat2, lon2) {
    var R = 6371000, rad = Math.PI / 180;
    var dLat = (lat2 - lat1) * rad, dLon = (lon2 - lon1) * rad;
    var a = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * R * Math.asin(Math.sqrt(a));
  }
  function show(d) {
    return d < 1000 ? Math.round(d / 10) * 10 + " m" : (d / 1000).toFixed(1).replace(".", ",") + " km";
  }
  function distances() {
    if (!here) return;
    document.querySelectorAll(".card[data-lat]").forEach(function (card) {
      var d = metres(here.latitude, here.longitude,
        parseFloat(card.getAttribute("data-lat")), parseFloat(card.getAttribute("data-lon")));
      var el = card.querySelector(".dist");
      if (el && !isNaN(d)) el.textContent = S.msg("staff.officer.away").replace("{d}", show(d));
    });
  }
  if (navigator.geolocation) {
    navigator.geolocation.watchPosition(function (pos) { here = pos.coords; distances(); },
      function () {}, { enableHighAccuracy: true, maximumAge: 15000, timeout: 20000 });
  }
  document.addEventListener("htmx:afterSettle", distances);

  function upload(input) {
    var form = input.closest("form");
    var thumbs = form.querySelector(".thumbs");
    var send = form.querySelector("button[type=submit]");
    Array.prototype.forEach.call(input.files || [], function (file) {
      var item = document.createElement("span");
      item.className = "thumb busy";
      item.textContent = S.msg("staff.officer.uploading");
      thumbs.appendChild(item);
      send.disabled = true;
      var data = new FormData();
      data.append("file", file, file.name);
      fetch("/api/v1/attachments", {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRF-Token": S.csrf, "Accept": "application/json" }
      }).then(function (r) {
        return r.json().then(function (j) { return { ok: r.ok, body: j }; });
      }).then(function (res) {
        if (!res.ok) throw new Error((res.body && res.body.detail) || S.msg("staff.err.upload"));
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "attachment_ids";
        hidden.value = res.body.attachment_id;
        form.appendChild(hidden);
        item.className = "thumb done";
        item.textContent = "";
        if (/^image\//.test(file.type)) {
          var img = document.createElement("img");
          img.alt = S.msg("staff.officer.uploaded");
          img.src = URL.createObjectURL(file);
          item.appendChild(img);
        } else {
          item.textContent = S.msg("staff.officer.uploaded");
        }
      }).catch(function (err) {
        item.className = "thumb failed";
        item.textContent = err.message || S.msg("staff.err.upload");
        S.toast(item.textContent, "error");
      }).then(function () {
        if (!form.querySelector(".thumb.busy")) send.disabled = false;
        input.value = "";
      });
    });
    form.setAttribute("data-dirty", "1");
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("input[data-upload]")) upload(e.target);
  });

  /* An incident that leaves the unit (re-routed, reassigned) or ends without it (merged,
   * cancelled, rejected) drops off the phone at once, with a short note why. */
  var GONE = { merged: "staff.officer.gone.merged", cancelled: "staff.officer.gone.cancelled",
               rejected: "staff.officer.gone.rejected" };
  document.addEventListener("staff-event", function (e) {
    var d = e.detail.data || {};
    var card = d.incident_id && document.querySelector('.card[data-id="' + d.incident_id + '"]');
    if (!card) return;
    var key = e.detail.kind === "incident.left" ? "staff.officer.gone.moved" : GONE[d.state];
    if (!key) return;
    S.toast(S.msg(key).replace("{code}", d.tracking_code || "")
      .replace("{unit}", d.unit_name || ""), "info");
    card.classList.add("gone");
    card.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    setTimeout(function () { if (card.parentNode) card.parentNode.removeChild(card); }, 4000);
  });
})();
