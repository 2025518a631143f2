/* Workflow pages: forms answer 400 with their errors (swap them in), the node editor shows the
   inputs its kind and handler rules need, and buttons with data-confirm ask first. Loaded by the
   designer and by the ticket panel (htmx may load it more than once: init once). */
(function () {
  "use strict";
  if (window.wfInit) return;
  window.wfInit = true;

  function toggleNodeForm(form) {
    var kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    form.querySelectorAll("[data-kinds]").forEach(function (el) {
      el.hidden = el.dataset.kinds.split(" ").indexOf(kind.value) < 0;
    });
    form.querySelectorAll("[data-rule-group]").forEach(function (group) {
      var rule = group.querySelector("select[name$=_rule]");
      group.querySelectorAll("[data-rule-show]").forEach(function (el) {
        el.hidden = !rule || el.dataset.ruleShow !== rule.value;
      });
    });
    var mode = form.querySelector("select[name=mode]");
    var n = form.querySelector("[data-mode-any]");
    if (mode && n) n.hidden = mode.value !== "any";
  }

  // A wide diagram scrolls sideways: say so, and bring the current node into view.
  function fitDiagrams(root) {
    (root.querySelectorAll ? root : document).querySelectorAll(".wf-diagram-wrap").forEach(function (wrap) {
      var overflow = wrap.scrollWidth > wrap.clientWidth + 2;
      var legend = wrap.nextElementSibling;
      if (legend) legend.classList.toggle("wf-overflowing", overflow);
      var active = wrap.querySelector("g[data-active] rect");
      if (overflow && active) {
        var box = active.getBoundingClientRect(), frame = wrap.getBoundingClientRect();
        wrap.scrollLeft += box.left + box.width / 2 - (frame.left + frame.width / 2);
      }
    });
  }

  function init(root) {
    fitDiagrams(root);
    (root.querySelectorAll ? root : document).querySelectorAll("form[data-node-form]").forEach(toggleNodeForm);
    if (root.matches && root.matches("form[data-node-form]")) toggleNodeForm(root);
  }

  document.addEventListener("change", function (evt) {
    var form = evt.target.closest && evt.target.closest("form[data-node-form]");
    if (form) toggleNodeForm(form);
  });

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) {
      evt.preventDefault();
      evt.stopPropagation();
    }
  }, true);

  function setupHtmx() {
    if (typeof htmx === "undefined" || window.wfHtmx) return;
    window.wfHtmx = true;
    htmx.onLoad(init);
    // Forms answer 400 with their errors: swap them in like a success.
    document.body.addEventListener("htmx:beforeSwap", onBeforeSwap);
    document.body.addEventListener("htmx:afterSwap", onAfterSwap);
    document.body.addEventListener("htmx:afterSettle", function () { fitDiagrams(document); });
  }

  function onBeforeSwap(evt) {
    if (evt.detail.xhr.status === 400) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  }

  function onAfterSwap(evt) {
    if (evt.detail.xhr && evt.detail.xhr.status === 400) {
      // Show the first error: the form may be far below (phones) or the panel may have moved.
      var error = document.querySelector("[data-testid=act-errors], [data-testid=panel-error], [data-field-error]");
      if (error) error.scrollIntoView({behavior: "smooth", block: "center"});
      return;
    }
    var target = evt.detail.target;
    if (target && (target.id === "wf-node-editor" || target.id === "wf-transition-editor")) {
      var editor = document.getElementById(target.id);
      if (editor) editor.scrollIntoView({behavior: "smooth", block: "start"});
    }
  }

  // The designer's diagram as an editor. Drag a kind from the palette onto the diagram (or tap
  // it: phones have no drag) to open the node form with that kind; in connect mode tap two nodes
  // to open the transition form between them. The forms stay the precise editor: nothing is
  // saved until the form is submitted.
  var connectFrom = null;

  function designerBox() { return document.querySelector("[data-wf-designer]"); }

  function openEditor(url, target) {
    if (typeof htmx === "undefined") { window.location.href = url; return; }
    htmx.ajax("GET", url, {target: target, swap: "outerHTML"});
  }

  function openNodeForm(kind) {
    var box = designerBox();
    if (box) openEditor(box.dataset.nodeUrl + "?kind=" + encodeURIComponent(kind), "#wf-node-editor");
  }

  function connectReset(box) {
    connectFrom = null;
    document.querySelectorAll("g.wf-picked").forEach(function (g) { g.classList.remove("wf-picked"); });
    var hint = box && box.querySelector("[data-connect-hint]");
    if (hint) hint.textContent = hint.dataset.first || "";
  }

  document.addEventListener("dragstart", function (evt) {
    var item = evt.target.closest && evt.target.closest("[data-palette-kind]");
    if (item) evt.dataTransfer.setData("text/plain", item.dataset.paletteKind);
  });
  document.addEventListener("dragover", function (evt) {
    if (evt.target.closest && evt.target.closest("[data-wf-drop]")) evt.preventDefault();
  });
  document.addEventListener("drop", function (evt) {
    var zone = evt.target.closest && evt.target.closest("[data-wf-drop]");
    if (!zone) return;
    evt.preventDefault();
    var kind = evt.dataTransfer.getData("text/plain");
    if (/^[a-z]+$/.test(kind)) openNodeForm(kind);
  });
  document.addEventListener("click", function (evt) {
    if (!evt.target.closest) return;
    var item = evt.target.closest("[data-palette-kind]");
    if (item) { openNodeForm(item.dataset.paletteKind); return; }
    var box = designerBox();
    if (!box) return;
    var toggle = evt.target.closest("[data-wf-connect]");
    if (toggle) {
      var on = !box.classList.contains("wf-connecting");
      box.classList.toggle("wf-connecting", on);
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      connectReset(box);
      if (!on) box.querySelector("[data-connect-hint]").textContent = "";
      return;
    }
    var node = box.classList.contains("wf-connecting") && evt.target.closest("[data-wf-drop] g[data-node]");
    if (!node) return;
    var key = node.getAttribute("data-node");
    var hint = box.querySelector("[data-connect-hint]");
    if (connectFrom === null || connectFrom === key) {
      connectReset(box);
      connectFrom = key;
      node.classList.add("wf-picked");
      if (hint) hint.textContent = hint.dataset.second || "";
      return;
    }
    openEditor(box.dataset.transitionUrl + "?from=" + encodeURIComponent(connectFrom) + "&to=" +
               encodeURIComponent(key), "#wf-transition-editor");
    connectReset(box);
  });

  document.addEventListener("DOMContentLoaded", function () { setupHtmx(); init(document); });
  if (document.readyState !== "loading") {
    setupHtmx();
    // Loaded by an htmx swap: the new content may not be in the page yet.
    window.setTimeout(function () { init(document); }, 0);
    window.setTimeout(function () { fitDiagrams(document); }, 250);
  }
})();
