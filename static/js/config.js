/* Configuration pages: the template builder (SortableJS drag and drop, the field editor that
   shows only the settings of the chosen type, the preview's public/staff switch) and small
   helpers (confirm before submit, select a secret on focus). Needs htmx; Sortable if present. */
(function () {
  "use strict";
  var previewAudience = "public";

  function initSortable(root) {
    if (typeof Sortable === "undefined") return;
    root.querySelectorAll("[data-sortable]").forEach(function (list) {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      Sortable.create(list, {
        handle: ".drag-handle",
        draggable: ".field-row",
        animation: 150,
        ghostClass: "sortable-ghost",
        onEnd: function (evt) {
          if (evt.oldIndex !== evt.newIndex) htmx.trigger(list, "fields-reordered");
        }
      });
    });
  }

  function initFieldForm(root) {
    root.querySelectorAll("form[data-field-form]").forEach(function (form) {
      var select = form.querySelector("select[name=type]");
      if (!select || form.dataset.typeReady) return;
      form.dataset.typeReady = "1";
      var op = form.querySelector("select[name=formula_op]");
      function apply() {
        var type = select.value;
        form.querySelectorAll("[data-setting]").forEach(function (box) {
          box.classList.toggle("d-none", box.dataset.setting.split(" ").indexOf(type) < 0);
        });
        // Rounding and "money" apply to multiply / add up only, not to date formulas.
        if (op && type === "computed") {
          ["formula_places", "formula_money"].forEach(function (name) {
            var input = form.querySelector("[name=" + name + "]");
            var box = input && input.closest("[data-setting]");
            if (box) box.classList.toggle("d-none", ["mul", "sum"].indexOf(op.value) < 0);
          });
        }
        form.querySelectorAll("[data-section]").forEach(function (section) {
          var shown = section.querySelectorAll(".row > div:not(.d-none)").length;
          section.classList.toggle("d-none", shown === 0);
        });
      }
      select.addEventListener("change", apply);
      if (op) op.addEventListener("change", apply);
      apply();
    });
  }

  function showPreview(root) {
    root.querySelectorAll("[data-preview-pane]").forEach(function (pane) {
      pane.classList.toggle("d-none", pane.dataset.previewPane !== previewAudience);
    });
    document.querySelectorAll("[data-preview-show]").forEach(function (button) {
      var active = button.dataset.previewShow === previewAudience;
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", active ? "true" : "false");
    });
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-preview-show]");
    if (button) {
      previewAudience = button.dataset.previewShow;
      showPreview(document);
    }
  });

  document.addEventListener("submit", function (evt) {
    var form = evt.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) evt.preventDefault();
  });

  document.addEventListener("focusin", function (evt) {
    if (evt.target.matches("[data-select-all]")) evt.target.select();
  });

  if (typeof htmx === "undefined") return;

  htmx.onLoad(function (content) {
    initSortable(content);
    initFieldForm(content);
    if (content.querySelector && content.querySelector("[data-preview-pane]")) showPreview(content);
  });

  // Forms answer 400 with their errors: swap them in like a success.
  document.body.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.xhr.status === 400) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  // An "Edit" click loads the editor below the list: bring it into view on small screens.
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail.target;
    if (target && target.id === "field-form") {
      var form = document.getElementById("field-form");
      if (form) {
        form.scrollIntoView({behavior: "smooth", block: "start"});
        var label = form.querySelector("input[name=label_zh]");
        if (label) label.focus({preventScroll: true});
      }
    }
  });
})();
