"""Automation routes under /automation/."""

from django.urls import path

from . import views

urlpatterns = [
    path("automation/triggers/", views.TriggerListView.as_view(), name="automation-trigger-list"),
    path("automation/triggers/new/", views.TriggerCreateView.as_view(), name="automation-trigger-create"),
    path("automation/triggers/<int:pk>/", views.TriggerUpdateView.as_view(), name="automation-trigger"),
    path("automation/firings/", views.FiringListView.as_view(), name="automation-firing-list"),
    path("automation/firings/<int:pk>/retry/", views.FiringRetryView.as_view(), name="automation-firing-retry"),
    path("automation/schedules/", views.ScheduleListView.as_view(), name="automation-schedule-list"),
    path("automation/schedules/new/", views.ScheduleCreateView.as_view(), name="automation-schedule-create"),
    path("automation/schedules/<int:pk>/", views.ScheduleUpdateView.as_view(), name="automation-schedule"),
    path("automation/revisits/", views.RevisitListView.as_view(), name="automation-revisit-list"),
    path("automation/lead-tiers/", views.LeadRulesView.as_view(), name="automation-lead-rules"),
    path("automation/revisits/<int:pk>/", views.RevisitRecordView.as_view(), name="automation-revisit-record"),
]
