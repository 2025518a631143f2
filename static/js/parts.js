// Spare parts on the ticket page and in the `parts` field. Scan to consume: a phone's scanner
// keyboard types the code and Enter into the box (nothing to do here); a camera button reads the
// barcode and submits it — with the browser's BarcodeDetector where it has one (Chrome on
// Android), else with the vendored ZXing reader (iOS Safari, desktop browsers).
// The `parts` field: a search box above the textarea adds "SKU 1" lines from the catalogue.
(function () {
  "use strict";

  // The vendored reader (static/vendor/zxing) is fetched once per page, only where it is needed:
  // 360 kB is too much to load on every page for the browsers that have BarcodeDetector.
  var zxingLoading = null;
  function zxingLoad(src) {
    if (window.ZXing) { return Promise.resolve(window.ZXing); }
    if (!zxingLoading) {
      zxingLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = src;
        script.onload = function () { return window.ZXing ? resolve(window.ZXing) : reject(new Error("zxing")); };
        script.onerror = function () { zxingLoading = null; reject(new Error("zxing")); };
        document.head.appendChild(script);
      });
    }
    return zxingLoading;
  }

  function scanned(form, code) {
    form.querySelector("input[name=code]").value = code;
    form.requestSubmit();
  }

  function nativeScan(button, video, form) {
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
            scanned(form, codes[0].rawValue);
          } else {
            window.requestAnimationFrame(tick);
          }
        }).catch(stop);
      }
      tick();
    }).catch(function () { button.classList.add("d-none"); });
  }

  function zxingScan(button, video, form) {
    var reader = new window.ZXing.BrowserMultiFormatReader();
    video.classList.remove("d-none");
    // A second tap stops the camera (the reader keeps decoding frames until reset).
    button.onclick = function () { reader.reset(); video.classList.add("d-none"); button.onclick = null; };
    reader.decodeFromConstraints({video: {facingMode: "environment"}}, video, function (result) {
      if (result) {
        reader.reset();
        video.classList.add("d-none");
        scanned(form, result.getText());
      }
    }).catch(function () { reader.reset(); video.classList.add("d-none"); button.classList.add("d-none"); });
  }

  function cameraSetup(root) {
    var button = root.querySelector("[data-parts-camera]");
    var video = root.querySelector("[data-parts-video]");
    if (!button || !video || button.dataset.ready || !navigator.mediaDevices ||
        !navigator.mediaDevices.getUserMedia) { return; }
    button.dataset.ready = "1";
    var form = button.closest("form");
    function show(kind) {
      button.dataset.reader = kind;
      button.classList.remove("d-none");
      button.addEventListener("click", function () {
        if (button.onclick) { return; }  // the ZXing reader is running: its stop handler acts
        (kind === "native" ? nativeScan : zxingScan)(button, video, form);
      });
    }
    if ("BarcodeDetector" in window) {
      show("native");
    } else if (button.dataset.zxingSrc) {
      zxingLoad(button.dataset.zxingSrc).then(function () { show("zxing"); }, function () {});
    }
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
