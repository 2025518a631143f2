"""URLs of the dashboards: the 工作台 (the site's first page), the board and the manager dashboard."""

from django.urls import include, path

from . import export_views, views, views_quality

urlpatterns = [
    path("", views.WorkbenchView.as_view(), name="workbench"),
    path("board/", views.BoardView.as_view(), name="board"),
    path("board/transfer/", views.BoardTransferView.as_view(), name="board-transfer"),
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("tickets/export/", export_views.TicketExportView.as_view(), name="ticket-export"),
    path("quality/", views.QualityView.as_view(), name="quality"),
    path("quality/<int:pk>/review/", views.QualityReviewView.as_view(), name="quality-review"),
    path("dashboard/export/", views.DashboardExportView.as_view(), name="dashboard-export"),
    path("exports/", include("dashboards.export_urls")),
    path("quality/report/", views_quality.QualityReportView.as_view(), name="quality-report"),
    path("quality/ticket/<int:pk>/", views_quality.TicketQualityPanelView.as_view(), name="dashboards-ticket-panel"),
]
