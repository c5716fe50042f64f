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
  var files = $("info-files");
  if (files) {
    files.addEventListener("change", function () {
      $("info-files-list").textContent = Array.prototype.map.call(files.files, function (f) { return f.name; }).join(", ");
    });
  }
})();
