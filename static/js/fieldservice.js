/* The visit page on the engineer's phone (templates/fieldservice/visit.html): check-in/out with
 * the browser's position, photos compressed on a canvas and queued on the phone (IndexedDB) until
 * the upload goes through, and the customer's signature pad. No inline script (CSP): the page's
 * URLs and texts come from data- attributes on #field-visit. */
(function () {
  "use strict";
  var root = document.getElementById("field-visit");
  if (!root) return;
  var msg = function (name) { return root.getAttribute("data-msg-" + name) || name; };

  function csrf() {
    var input = document.querySelector("#field-csrf input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // POST a FormData; resolves {status, body} (body null when the answer is not JSON), rejects on no network.
  function post(url, data) {
    data.append("csrfmiddlewaretoken", csrf());
    return fetch(url, { method: "POST", body: data, credentials: "same-origin",
                        headers: { "X-CSRFToken": csrf(), "Accept": "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { status: response.status, body: body }; },
                                    function () { return { status: response.status, body: null }; });
      });
  }

  function say(el, text, kind) {
    if (!el) return;
    el.textContent = text;
    el.className = "mt-2 small" + (kind ? " text-" + kind : "");
  }

  function locate(timeout) {
    return new Promise(function (resolve, reject) {
      if (!navigator.geolocation) { reject(new Error("unsupported")); return; }
      navigator.geolocation.getCurrentPosition(resolve, reject,
        { enableHighAccuracy: true, timeout: timeout || 15000, maximumAge: 60000 });
    });
  }

  // --- photo compression ----------------------------------------------------------------
  var MAX_EDGE = parseInt(root.getAttribute("data-max-edge"), 10) || 1600;
  var QUALITY = parseFloat(root.getAttribute("data-quality")) || 0.8;

  function compress(file) {
    return new Promise(function (resolve) {
      if (!/^image\//.test(file.type) || file.type === "image/gif") { resolve(file); return; }
      var url = URL.createObjectURL(file);
      var img = new Image();
      img.onload = function () {
        var scale = Math.min(1, MAX_EDGE / Math.max(img.naturalWidth, img.naturalHeight));
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(img.naturalWidth * scale);
        canvas.height = Math.round(img.naturalHeight * scale);
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        URL.revokeObjectURL(url);
        canvas.toBlob(function (blob) {
          resolve(blob && blob.size < file.size ? blob : file);
        }, "image/jpeg", QUALITY);
      };
      img.onerror = function () { URL.revokeObjectURL(url); resolve(file); };  // e.g. HEIC: send as is
      img.src = url;
    });
  }

  // --- the upload queue on the phone ----------------------------------------------------
  // Each photo is stored before the first try and deleted only when the server has it; a
  // refused one stays, with the server's reason, until the engineer removes it.
  var STORE = "uploads";
  var memory = {};  // used only when IndexedDB is unavailable (then the page warns)
  var dbPromise = new Promise(function (resolve) {
    if (!window.indexedDB) { resolve(null); return; }
    var request;
    try { request = indexedDB.open("scrm-field", 1); } catch (e) { resolve(null); return; }
    request.onupgradeneeded = function () { request.result.createObjectStore(STORE, { keyPath: "id" }); };
    request.onsuccess = function () { resolve(request.result); };
    request.onerror = function () { resolve(null); };
  });

  function tx(mode, work) {
    return dbPromise.then(function (db) {
      if (!db) return work(null);
      return new Promise(function (resolve, reject) {
        var t = db.transaction(STORE, mode);
        var result = work(t.objectStore(STORE));
        t.oncomplete = function () { resolve(result && result.result !== undefined ? result.result : result); };
        t.onerror = function () { reject(t.error); };
      });
    });
  }
  function put(item) { return tx("readwrite", function (s) { if (!s) { memory[item.id] = item; return item; } return s.put(item); }); }
  function remove(id) { return tx("readwrite", function (s) { if (!s) { delete memory[id]; return null; } return s.delete(id); }); }
  function all() {
    return tx("readonly", function (s) {
      if (!s) { return Object.keys(memory).map(function (k) { return memory[k]; }); }
      return s.getAll();
    });
  }

  var photoUrl = root.getAttribute("data-photo-url");
  var owner = root.getAttribute("data-queue-key");
  var queueEl = document.getElementById("photo-queue");
  var busy = false;
  var timer = null;

  function mine(items) {
    return (items || []).filter(function (i) { return i.url === photoUrl && i.owner === owner; })
      .sort(function (a, b) { return a.created - b.created; });
  }

  function render() {
    if (!queueEl) return Promise.resolve();
    return Promise.all([all(), dbPromise]).then(function (results) {
      var items = mine(results[0]);
      queueEl.textContent = "";
      if (!results[1] && items.length) {
        var warn = document.createElement("li");
        warn.className = "text-danger";
        warn.textContent = "⚠ IndexedDB";
        queueEl.appendChild(warn);
      }
      items.forEach(function (item) {
        var li = document.createElement("li");
        li.className = "d-flex align-items-center gap-2 py-1";
        li.setAttribute("data-testid", "queued-photo");
        li.setAttribute("data-state", item.state);
        var name = document.createElement("span");
        name.className = "text-truncate";
        name.textContent = item.name;
        var badge = document.createElement("span");
        var labels = { queued: msg("queued"), uploading: msg("uploading"), failed: msg("failed"), rejected: msg("rejected") };
        badge.className = "badge " + ({ failed: "text-bg-warning", rejected: "text-bg-danger", uploading: "text-bg-info" }[item.state] || "text-bg-secondary");
        badge.textContent = labels[item.state] + (item.attempts > 1 && item.state === "failed" ? " ×" + item.attempts : "");
        li.appendChild(badge);
        li.appendChild(name);
        if (item.error) {
          var err = document.createElement("span");
          err.className = "text-danger";
          err.textContent = item.error;
          li.appendChild(err);
        }
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-sm btn-link ms-auto";
        button.textContent = item.state === "rejected" ? msg("remove") : msg("retry");
        button.addEventListener("click", function () {
          if (item.state === "rejected") { remove(item.id).then(render); return; }
          item.state = "queued";
          put(item).then(drain);
        });
        li.appendChild(button);
        queueEl.appendChild(li);
      });
    });
  }

  function schedule(attempts) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(drain, Math.min(60000, 5000 * Math.pow(2, Math.max(0, attempts - 1))));
  }

  function showPhoto(blob, phase) {
    var box = document.querySelector("[data-testid=photos]");
    if (!box) return;
    var img = document.createElement("img");
    img.className = "img-thumbnail";
    img.style.cssText = "height: 88px; width: 88px; object-fit: cover";
    img.alt = phase;
    img.src = URL.createObjectURL(blob);
    box.appendChild(img);
  }

  function drain() {
    if (busy) return;
    busy = true;
    all().then(function (items) {
      var next = mine(items).filter(function (i) { return i.state === "queued" || i.state === "failed"; })[0];
      if (!next) { busy = false; return render(); }
      next.state = "uploading";
      return put(next).then(render).then(function () {
        var data = new FormData();
        data.append("photo", new File([next.blob], next.name, { type: next.blob.type || "image/jpeg" }));
        data.append("phase", next.phase);
        data.append("is_public", next.isPublic ? "1" : "0");
        return post(photoUrl, data).then(function (answer) {
          if (answer.status === 200 && answer.body && answer.body.ok) {
            showPhoto(next.blob, next.phase);
            return remove(next.id);
          }
          if (answer.status >= 400 && answer.status < 500 && answer.status !== 408 && answer.status !== 429) {
            next.state = "rejected";  // the server said no (not an image, too large): retrying will not help
            next.error = answer.body && answer.body.error ? answer.body.error : String(answer.status);
            return put(next);
          }
          throw new Error("server " + answer.status);
        }).catch(function () {
          next.state = "failed";
          next.attempts = (next.attempts || 0) + 1;
          return put(next).then(function () { schedule(next.attempts); throw new Error("retry later"); });
        });
      }).then(function () { busy = false; render(); drain(); }, function () { busy = false; render(); });
    });
  }

  document.querySelectorAll("[data-photo-phase]").forEach(function (input) {
    input.addEventListener("change", function () {
      var phase = input.getAttribute("data-photo-phase");
      var isPublic = document.getElementById("photo-public");
      var files = Array.prototype.slice.call(input.files || []);
      input.value = "";
      files.reduce(function (chain, file) {
        return chain.then(function () { return compress(file); }).then(function (blob) {
          var name = file.name.replace(/\.[^.]+$/, "") + (blob === file ? file.name.replace(/^[^.]*/, "") : ".jpg");
          return put({ id: Date.now() + "-" + Math.random().toString(36).slice(2), owner: owner, url: photoUrl,
                       phase: phase, isPublic: !!(isPublic && isPublic.checked), blob: blob, name: name,
                       state: "queued", attempts: 0, created: Date.now() });
        });
      }, Promise.resolve()).then(render).then(drain);
    });
  });
  window.addEventListener("online", drain);
  render().then(drain);

  // --- check-in and check-out -----------------------------------------------------------
  var checkinStatus = document.getElementById("checkin-status");
  var reasonBox = document.getElementById("checkin-reason");
  var lastPosition = null;  // the position of the refused check-in, sent again with the reason

  function answered(answer, statusEl) {
    if (answer.body && answer.body.ok) {
      say(statusEl, answer.body.message, "success");
      setTimeout(function () { window.location.reload(); }, 700);
      return true;
    }
    say(statusEl, answer.body ? answer.body.error : String(answer.status), "danger");
    return false;
  }

  function positionData(position) {
    var data = new FormData();
    if (position) {
      data.append("lat", position.coords.latitude.toFixed(6));
      data.append("lng", position.coords.longitude.toFixed(6));
      data.append("accuracy", Math.round(position.coords.accuracy || 0));
    }
    return data;
  }

  function askReason(text, photoRequired) {
    reasonBox.classList.remove("d-none");
    document.getElementById("checkin-photo-hint").classList.toggle("d-none", !photoRequired);
    say(checkinStatus, text, "warning-emphasis");
    document.getElementById("reason").focus();
  }

  function checkin() {
    say(checkinStatus, msg("locating"));
    locate().then(function (position) {
      lastPosition = position;
      say(checkinStatus, msg("sending"));
      return post(root.getAttribute("data-checkin-url"), positionData(position)).then(function (answer) {
        if (!answered(answer, checkinStatus) && answer.body && answer.body.needs_reason) {
          askReason(answer.body.error, false);
        }
      });
    }, function () {
      lastPosition = null;
      askReason(msg("no-location"), true);
    }).catch(function () { say(checkinStatus, msg("offline"), "danger"); });
  }

  function checkinWithReason() {
    var data = positionData(lastPosition);
    data.append("reason", document.getElementById("reason").value);
    var file = document.getElementById("checkin-photo").files[0];
    say(checkinStatus, msg("sending"));
    (file ? compress(file) : Promise.resolve(null)).then(function (blob) {
      if (blob) data.append("photo", new File([blob], file.name.replace(/\.[^.]+$/, "") + ".jpg", { type: blob.type || "image/jpeg" }));
      return post(root.getAttribute("data-checkin-url"), data);
    }).then(function (answer) { answered(answer, checkinStatus); },
            function () { say(checkinStatus, msg("offline"), "danger"); });
  }

  function checkout() {
    say(checkinStatus, msg("locating"));
    locate(10000).catch(function () { return null; }).then(function (position) {
      say(checkinStatus, msg("sending"));
      return post(root.getAttribute("data-checkout-url"), positionData(position));
    }).then(function (answer) { answered(answer, checkinStatus); },
            function () { say(checkinStatus, msg("offline"), "danger"); });
  }

  // --- the signature pad ----------------------------------------------------------------
  var pad = document.getElementById("sig-pad");
  var strokes = 0;
  if (pad) {
    var ctx = pad.getContext("2d");
    var drawing = false;
    var fit = function () {
      var ratio = window.devicePixelRatio || 1;
      pad.width = pad.clientWidth * ratio;
      pad.height = pad.clientHeight * ratio;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.lineWidth = 2.5;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.strokeStyle = "#111";
      strokes = 0;
    };
    var at = function (event) {
      var box = pad.getBoundingClientRect();
      return [event.clientX - box.left, event.clientY - box.top];
    };
    fit();
    pad.addEventListener("pointerdown", function (event) {
      drawing = true;
      pad.setPointerCapture(event.pointerId);
      var p = at(event);
      ctx.beginPath();
      ctx.moveTo(p[0], p[1]);
      ctx.lineTo(p[0] + 0.1, p[1] + 0.1);
      ctx.stroke();
      strokes += 1;
    });
    pad.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var p = at(event);
      ctx.lineTo(p[0], p[1]);
      ctx.stroke();
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      pad.addEventListener(name, function () { drawing = false; });
    });
    document.getElementById("sig-clear").addEventListener("click", function () {
      ctx.clearRect(0, 0, pad.width, pad.height);
      strokes = 0;
    });
  }

  function sign() {
    var status = document.getElementById("sig-status");
    if (!strokes) { say(status, msg("sign-first"), "danger"); return; }
    say(status, msg("sending"));
    new Promise(function (resolve) { pad.toBlob(resolve, "image/png"); }).then(function (blob) {
      return locate(5000).catch(function () { return null; }).then(function (position) {
        var data = positionData(position);
        data.append("signature", new File([blob], "signature.png", { type: "image/png" }));
        data.append("signer_name", document.getElementById("signer-name").value);
        data.append("rating", document.getElementById("sig-rating").value);
        return post(root.getAttribute("data-signature-url"), data);
      });
    }).then(function (answer) { answered(answer, status); }, function () { say(status, msg("offline"), "danger"); });
  }

  function depart() {
    var status = document.getElementById("depart-status");
    var data = new FormData();
    data.append("eta", document.getElementById("eta").value);
    say(status, msg("sending"));
    post(root.getAttribute("data-depart-url"), data).then(function (answer) {
      say(status, answer.body ? (answer.body.ok ? answer.body.message : answer.body.error) : String(answer.status),
          answer.body && answer.body.ok ? "success" : "danger");
    }, function () { say(status, msg("offline"), "danger"); });
  }

  var actions = { depart: depart, checkin: checkin, "checkin-reason": checkinWithReason, checkout: checkout, signature: sign };
  document.querySelectorAll("[data-field-action]").forEach(function (button) {
    button.addEventListener("click", function () { actions[button.getAttribute("data-field-action")](); });
  });
})();
