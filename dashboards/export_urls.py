"""URLs of the ticket list's background exports (under exports/)."""

from django.urls import path

from . import export_views as views

urlpatterns = [
    path("", views.ExportListView.as_view(), name="export-list"),
    path("start/", views.ExportStartView.as_view(), name="export-start"),
    path("<int:pk>/", views.ExportDetailView.as_view(), name="export-detail"),
    path("<int:pk>/progress/", views.ExportProgressView.as_view(), name="export-progress"),
    path("<int:pk>/download/", views.ExportDownloadView.as_view(), name="export-download"),
]
