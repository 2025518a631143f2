// A filter box above each <select data-searchable>: typing hides the options (and region groups)
// that do not contain the text, so a customer finds 徐汇店 among sixty stores on a phone.
(function () {
  function attach(select) {
    if (select.dataset.searchReady) return;
    select.dataset.searchReady = "1";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "form-control form-control-sm mb-1";
    box.placeholder = select.getAttribute("data-search-placeholder") || "搜索…";
    box.setAttribute("aria-label", box.placeholder);
    select.parentNode.insertBefore(box, select);
    box.addEventListener("input", function () {
      var text = box.value.trim().toLowerCase();
      var firstMatch = null;
      Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (group) {
        var groupHit = group.label.toLowerCase().indexOf(text) !== -1;
        var any = false;
        Array.prototype.forEach.call(group.querySelectorAll("option"), function (option) {
          var show = !text || groupHit || option.text.toLowerCase().indexOf(text) !== -1;
          option.hidden = !show;
          if (show) { any = true; if (!firstMatch) firstMatch = option; }
        });
        group.hidden = !any;
      });
      var chosen = select.selectedOptions[0];
      if (firstMatch && chosen && chosen.hidden) select.value = firstMatch.value;
    });
  }
  function scan(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("select[data-searchable]"), attach);
  }
  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:afterSwap", function (event) { scan(event.target); });
})();
