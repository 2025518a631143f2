"""URLs of the field-service pages (the engineer's phone, the manager's day of check-ins)."""

from django.urls import path

from . import views

urlpatterns = [
    path("field/today/", views.TodayView.as_view(), name="field-today"),
    path("field/visit/<int:pk>/", views.VisitView.as_view(), name="field-visit"),
    path("field/visit/<int:pk>/<slug:action>/", views.VisitActionView.as_view(), name="field-visit-action"),
    path("field/checkins/", views.CheckinsView.as_view(), name="field-checkins"),
    path("field/checkins/<int:pk>/review/", views.CheckinReviewView.as_view(), name="field-checkin-review"),
]
