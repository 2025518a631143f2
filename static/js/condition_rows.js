// The rule form's condition rows: without JavaScript all rows show; with it, only the filled ones
// (or the first) plus an "add row" button that reveals the next, so a short condition stays short
// on a phone. Rows with an error always show, so their message is never hidden.
(function () {
  var box = document.querySelector("[data-condition-rows]");
  if (!box) return;
  var rows = Array.prototype.slice.call(box.querySelectorAll("[data-testid=condition-row]"));
  var button = box.querySelector("[data-condition-add]");
  var filled = function (row) {
    return Array.prototype.some.call(row.querySelectorAll("select, input"), function (el) { return el.value; }) ||
      row.querySelector(".text-danger");
  };
  var last = 0;
  rows.forEach(function (row, i) { if (filled(row)) last = i; });
  rows.forEach(function (row, i) { row.hidden = i > last; });
  var sync = function () {
    var next = rows.filter(function (row) { return row.hidden; })[0];
    button.hidden = !next;
  };
  button.addEventListener("click", function () {
    var next = rows.filter(function (row) { return row.hidden; })[0];
    if (next) { next.hidden = false; next.querySelector("select").focus(); }
    sync();
  });
  sync();
})();
