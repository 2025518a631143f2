"""URLs of the in-app notifications, the managers' templates and each person's preferences.
Templates are addressed by event × channel × language in the query string (a slot may hold no
saved row yet); the reset takes a saved template's id in the POST body."""

from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.InboxView.as_view(), name="notification-inbox"),
    path("notifications/bell/", views.BellView.as_view(), name="notification-bell"),
    path("notifications/preferences/", views.PreferencesView.as_view(), name="notification-preferences"),
    path("notifications/templates/", views.TemplateListView.as_view(), name="notification-template-list"),
    path("notifications/templates/edit/", views.TemplateEditView.as_view(), name="notification-template-edit"),
    path("notifications/templates/preview/", views.TemplatePreviewView.as_view(),
         name="notification-template-preview"),
    path("notifications/templates/reset/", views.TemplateResetView.as_view(), name="notification-template-reset"),
]
