"""URLs of the REST API and its OpenAPI schema (full paths; scrm/urls.py includes this at the root)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import api

urlpatterns = [
    path("api/v1/tickets/", api.TicketListCreateView.as_view(), name="api-ticket-list"),
    path("api/v1/tickets/<str:number>/", api.TicketDetailView.as_view(), name="api-ticket-detail"),
    path("api/v1/templates/", api.TemplateListView.as_view(), name="api-template-list"),
    # Public, like any published API description; it lists no tenant data.
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[]), name="api-schema"),
]
