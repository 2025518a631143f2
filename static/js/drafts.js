/* Drafts kept on the phone: what an engineer types into a form marked data-draft-key (the workflow
 * node's fields) is saved in localStorage as they type, restored if the page is opened again
 * before the submit went through, and dropped once the server has taken it (an htmx request that
 * succeeded). On a weak signal nothing typed is lost: a failed send says so and keeps the draft.
 * Texts come from this script tag's data- attributes (no inline script: CSP). */
(function () {
  "use strict";
  var me = document.currentScript;
  var text = function (name, fallback) { return (me && me.getAttribute("data-msg-" + name)) || fallback; };
  var PREFIX = "scrm-draft:";
  var MAX_AGE = 7 * 24 * 3600 * 1000;

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrfmiddlewaretoken" && el.type !== "file" && el.type !== "hidden" &&
        el.type !== "submit" && el.type !== "button" && el.type !== "password";
    });
  }

  function read(form) {
    var values = {};
    fields(form).forEach(function (el) {
      if (el.type === "checkbox" || el.type === "radio") {
        values[el.name] = values[el.name] || [];
        if (el.checked) values[el.name].push(el.value);
      } else if (el.multiple) {
        values[el.name] = Array.prototype.filter.call(el.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
      } else {
        values[el.name] = el.value;
      }
    });
    return values;
  }

  function write(form, values) {
    fields(form).forEach(function (el) {
      if (!(el.name in values)) return;
      var value = values[el.name];
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = Array.isArray(value) && value.indexOf(el.value) >= 0;
      } else if (el.multiple) {
        Array.prototype.forEach.call(el.options, function (o) { o.selected = Array.isArray(value) && value.indexOf(o.value) >= 0; });
      } else if (typeof value === "string") {
        el.value = value;
      }
    });
  }

  function note(form, message, withDiscard) {
    var box = form.querySelector(".draft-note");
    if (!box) {
      box = document.createElement("div");
      box.className = "draft-note alert alert-info py-1 px-2 small d-flex align-items-center gap-2";
      box.setAttribute("role", "status");
      box.setAttribute("data-testid", "draft-note");
      form.insertBefore(box, form.firstElementChild ? form.firstElementChild.nextSibling : null);
    }
    box.textContent = message;
    if (withDiscard) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-sm btn-link p-0 ms-auto";
      button.textContent = text("discard", "Discard");
      button.addEventListener("click", function () {
        var store = storage();
        if (store) store.removeItem(PREFIX + form.getAttribute("data-draft-key"));
        box.remove();
      });
      box.appendChild(button);
    }
  }

  function attach(form) {
    if (form.hasAttribute("data-draft-ready")) return;
    form.setAttribute("data-draft-ready", "");
    var store = storage();
    if (!store) return;
    var key = PREFIX + form.getAttribute("data-draft-key");
    var saved = null;
    try { saved = JSON.parse(store.getItem(key) || "null"); } catch (e) { saved = null; }
    if (saved && Date.now() - saved.t < MAX_AGE && saved.v) {
      write(form, saved.v);
      note(form, text("restored", "Restored what you typed on this phone."), true);
    } else if (saved) {
      store.removeItem(key);
    }
    var timer = null;
    var save = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        try { store.setItem(key, JSON.stringify({ t: Date.now(), v: read(form) })); } catch (e) { /* full: keep typing */ }
      }, 300);
    };
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    form.addEventListener("htmx:afterRequest", function (event) {
      if (event.detail && event.detail.successful) store.removeItem(key);
    });
    form.addEventListener("htmx:sendError", function () {
      note(form, text("offline", "No connection: what you typed is kept on this phone; send again when you have signal."), false);
    });
    form.addEventListener("submit", function (event) {
      if (navigator.onLine === false) {
        event.preventDefault();
        event.stopImmediatePropagation();  // capture at the target runs before htmx's own listener
        note(form, text("offline", "No connection: what you typed is kept on this phone; send again when you have signal."), false);
      }
    }, true);
  }

  function scan(root) {
    (root || document).querySelectorAll("form[data-draft-key]").forEach(attach);
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
