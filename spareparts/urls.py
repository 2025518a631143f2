"""Routes of the parts library (备件库) and the ticket page's parts actions."""

from django.urls import path

from . import views

urlpatterns = [
    path("parts/", views.PartListView.as_view(), name="parts-catalogue"),
    path("parts/new/", views.PartCreateView.as_view(), name="parts-part-new"),
    path("parts/<int:pk>/edit/", views.PartUpdateView.as_view(), name="parts-part-edit"),
    path("parts/warehouses/", views.WarehouseListView.as_view(), name="parts-warehouses"),
    path("parts/warehouses/new/", views.WarehouseCreateView.as_view(), name="parts-warehouse-new"),
    path("parts/warehouses/<int:pk>/edit/", views.WarehouseUpdateView.as_view(), name="parts-warehouse-edit"),
    path("parts/bom/", views.BomListView.as_view(), name="parts-bom"),
    path("parts/bom/<int:pk>/", views.BomEditView.as_view(), name="parts-bom-edit"),
    path("parts/search/", views.PartSearchView.as_view(), name="parts-search"),
    path("parts/stock/", views.StockListView.as_view(), name="parts-stock"),
    path("parts/ledger/", views.LedgerView.as_view(), name="parts-ledger"),
    path("parts/receive/", views.ReceiveView.as_view(), name="parts-receive"),
    path("parts/adjust/", views.AdjustView.as_view(), name="parts-adjust"),
    path("parts/transfers/", views.TransferView.as_view(), name="parts-transfers"),
    path("parts/transfers/<int:pk>/receive/", views.TransferReceiveView.as_view(), name="parts-transfer-receive"),
    path("parts/import/", views.ImportView.as_view(), name="parts-import"),
    path("parts/export/catalogue.csv", views.ExportView.as_view(), {"what": "catalogue"},
         name="parts-export-catalogue"),
    path("parts/export/stock.csv", views.ExportView.as_view(), {"what": "stock"}, name="parts-export-stock"),
    path("parts/reorder/", views.ReorderView.as_view(), name="parts-reorder"),
    path("parts/purchases/<int:pk>/order/", views.PurchaseOrderView.as_view(), name="parts-purchase-order"),
    path("parts/purchases/<int:pk>/cancel/", views.PurchaseCancelView.as_view(), name="parts-purchase-cancel"),
    path("parts/ticket/<int:pk>/", views.TicketPartsView.as_view(), name="parts-ticket-panel"),
    path("parts/ticket/<int:pk>/scan/", views.TicketScanView.as_view(), name="parts-ticket-scan"),
]
