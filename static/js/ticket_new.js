/* The new-ticket page: pick a customer from the search results, or clear the choice. */
document.addEventListener("click", function (e) {
  const pick = e.target.closest("[data-customer-id]");
  if (pick) {
    document.getElementById("id_customer_id").value = pick.dataset.customerId;
    document.getElementById("customer-picked-label").textContent = pick.dataset.customerLabel;
    document.getElementById("customer-picked").classList.remove("d-none");
    document.getElementById("customer-find").classList.add("d-none");
  }
  if (e.target.id === "customer-clear") {
    document.getElementById("id_customer_id").value = "";
    document.getElementById("customer-picked").classList.add("d-none");
    document.getElementById("customer-find").classList.remove("d-none");
  }
});
