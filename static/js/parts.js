// Spare parts on the ticket page and in the `parts` field. Scan to consume: a phone's scanner
// keyboard types the code and Enter into the box (nothing to do here); where the browser has the
// BarcodeDetector API (Chrome on Android), a camera button reads the barcode and submits it.
// The `parts` field: a search box above the textarea adds "SKU 1" lines from the catalogue.
(function () {
  "use strict";

  function cameraSetup(root) {
    var button = root.querySelector("[data-parts-camera]");
    var video = root.querySelector("[data-parts-video]");
    if (!button || !video || button.dataset.ready || !("BarcodeDetector" in window) ||
        !navigator.mediaDevices) { return; }
    button.dataset.ready = "1";
    button.classList.remove("d-none");
    button.addEventListener("click", function () {
      var form = button.closest("form");
      var input = form.querySelector("input[name=code]");
      var detector = new window.BarcodeDetector();
      navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}}).then(function (stream) {
        video.srcObject = stream;
        video.classList.remove("d-none");
        video.play();
        function stop() { stream.getTracks().forEach(function (t) { t.stop(); }); video.classList.add("d-none"); }
        function tick() {
          detector.detect(video).then(function (codes) {
            if (codes.length) {
              stop();
              input.value = codes[0].rawValue;
              form.requestSubmit();
            } else {
              window.requestAnimationFrame(tick);
            }
          }).catch(stop);
        }
        tick();
      }).catch(function () { button.classList.add("d-none"); });
    });
  }

  function searchSetup(area) {
    if (area.dataset.ready) { return; }
    area.dataset.ready = "1";
    var box = document.createElement("input");
    var list = document.createElement("datalist");
    list.id = area.id + "-parts";
    box.className = "form-control form-control-sm mb-1";
    box.type = "search";
    box.setAttribute("list", list.id);
    box.placeholder = area.getAttribute("data-parts-placeholder") || "SKU / 名称";
    area.parentNode.insertBefore(box, area);
    area.parentNode.insertBefore(list, area);
    var timer = null;
    box.addEventListener("input", function () {
      var picked = Array.prototype.find.call(list.options, function (o) { return o.value === box.value; });
      if (picked) {
        area.value = (area.value.trim() ? area.value.trim() + "\n" : "") + picked.value + " 1";
        box.value = "";
        return;
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        fetch(area.dataset.partsSearch + "?q=" + encodeURIComponent(box.value), {credentials: "same-origin"})
          .then(function (r) { return r.json(); })
          .then(function (data) {
            list.textContent = "";
            data.results.forEach(function (p) {
              var option = document.createElement("option");
              option.value = p.sku;
              option.label = p.name;
              list.appendChild(option);
            });
          });
      }, 200);
    });
  }

  function setup(root) {
    var panel = root.querySelector ? root.querySelector("#ticket-parts") : null;
    if (panel) { cameraSetup(panel); }
    if (root.id === "ticket-parts") { cameraSetup(root); }
    (root.querySelectorAll ? root.querySelectorAll("textarea[data-parts-search]") : []).forEach(searchSetup);
  }

  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.body && document.body.addEventListener("htmx:load", function (e) { setup(e.target); });
  document.addEventListener("htmx:load", function (e) { setup(e.target); });
}());
