"""Routes of the parts library (备件库) and the ticket page's parts actions."""

from django.urls import path

from . import views

app_name = "spareparts"

urlpatterns = [
    path("parts/", views.PartListView.as_view(), name="part_list"),
    path("parts/search/", views.PartSearchView.as_view(), name="part_search"),
    path("parts/stock/", views.StockListView.as_view(), name="stock_list"),
    path("parts/ledger/", views.LedgerView.as_view(), name="ledger"),
    path("parts/receive/", views.ReceiveView.as_view(), name="receive"),
    path("parts/adjust/", views.AdjustView.as_view(), name="adjust"),
    path("parts/transfers/", views.TransferView.as_view(), name="transfers"),
    path("parts/transfers/<int:pk>/receive/", views.TransferReceiveView.as_view(), name="transfer_receive"),
    path("parts/reorder/", views.ReorderView.as_view(), name="reorder"),
    path("tickets/<int:pk>/parts/", views.TicketPartsView.as_view(), name="ticket_parts"),
    path("tickets/<int:pk>/parts/scan/", views.TicketScanView.as_view(), name="ticket_scan"),
]
