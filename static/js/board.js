// The progress board: in the "by handler" view each column is a drop zone; dropping a card on
// another handler's column POSTs the transfer (the server moves the ticket and its open task
// through the workflow lifecycle), then the columns are re-read. htmx polling pauses while a
// card is being dragged (the board-dragging class) and re-binds after every swap.
(function () {
  "use strict";
  function status(text, ok) {
    var box = document.getElementById("board-status");
    if (!box) { return; }
    box.textContent = text;
    box.className = "small mb-2 " + (ok ? "text-success" : "text-danger");
  }
  function bind() {
    var board = document.getElementById("board");
    if (!board || !window.Sortable) { return; }
    var url = board.getAttribute("data-transfer-url");
    if (!url) { return; }
    board.querySelectorAll(".board-drop").forEach(function (zone) {
      if (zone.dataset.bound) { return; }
      zone.dataset.bound = "1";
      window.Sortable.create(zone, {
        group: "board", animation: 120, sort: false,
        onStart: function () { document.body.classList.add("board-dragging"); },
        onEnd: function (evt) {
          document.body.classList.remove("board-dragging");
          if (evt.from === evt.to) { return; }
          var body = new URLSearchParams();
          body.set("ticket", evt.item.getAttribute("data-ticket"));
          body.set("handler", evt.to.getAttribute("data-handler"));
          var token = document.querySelector("[name=csrfmiddlewaretoken]");
          var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
          headers["HX-Request"] = "true";
          headers["Content-Type"] = "application/x-www-form-urlencoded";
          if (token) { headers["X-CSRFToken"] = token.value; }
          fetch(url, { method: "POST", headers: headers, body: body, credentials: "same-origin" })
            .then(function (resp) { return resp.text().then(function (text) { status(text, resp.ok); }); })
            .catch(function () { status(board.getAttribute("data-error") || "×", false); })
            .then(function () { window.htmx.trigger(board, "refresh"); });
        }
      });
    });
  }
  // No htmx filter expression for this (they need eval, which the CSP refuses): skip the poll here.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (document.body.classList.contains("board-dragging") && evt.target.id === "board") { evt.preventDefault(); }
  });
  document.addEventListener("DOMContentLoaded", bind);
  document.addEventListener("htmx:afterSwap", bind);
}());
