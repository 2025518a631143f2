"""URLs of the ticket pages: public form and tracking, staff list, new ticket, ticket page."""

from django.urls import path

from . import views

urlpatterns = [
    # The thanks page comes first: "thanks" would otherwise be read as a tenant slug.
    path("s/thanks/<str:token>/", views.public_thanks, name="ticket-public-thanks"),
    path("s/<slug:tenant_slug>/<slug:template_slug>/", views.PublicFormView.as_view(), name="ticket-public-form"),
    path("track/<str:token>/", views.TrackView.as_view(), name="ticket-track"),
    path("track/<str:token>/rate/", views.TrackRateView.as_view(), name="ticket-track-rate"),
    path("track/<str:token>/files/<int:pk>/", views.public_attachment, name="ticket-public-attachment"),
    path("tickets/", views.TicketListView.as_view(), name="ticket-list"),
    path("tickets/new/", views.TicketNewChooseView.as_view(), name="ticket-new"),
    path("tickets/bulk/", views.TicketBulkView.as_view(), name="ticket-bulk"),
    path("tickets/new/<int:template_id>/", views.TicketCreateView.as_view(), name="ticket-create"),
    path("tickets/customer-search/", views.CustomerSearchView.as_view(), name="ticket-customer-search"),
    path("tickets/<int:pk>/", views.TicketDetailView.as_view(), name="ticket-detail"),
    path("tickets/<int:pk>/<slug:action>/", views.TicketActionView.as_view(), name="ticket-action"),
    path("tickets/files/<int:pk>/", views.AttachmentDownloadView.as_view(), name="ticket-attachment"),
    path("healthz", views.healthz, name="healthz"),
]
