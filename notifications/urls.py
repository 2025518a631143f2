"""URLs of the in-app notifications."""

from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.InboxView.as_view(), name="notification-inbox"),
    path("notifications/bell/", views.BellView.as_view(), name="notification-bell"),
]
