/* Runs on every citizen page: marks JS as present and registers the service worker. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  if ("serviceWorker" in navigator && window.isSecureContext) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
    });
  }
})();
