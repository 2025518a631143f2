"""Automation reads for the pages and the customer panel, each a constant number of queries."""

from __future__ import annotations

from django.db.models import Count, Q

from .models import CustomerGrade, Firing, Revisit, RevisitStatus, Schedule, Trigger


def trigger_list():
    return Trigger.objects.annotate(
        fired=Count("firings"), failing=Count("firings", filter=Q(firings__status__in=["failed", "dead"]))
    ).order_by("-is_active", "name", "id")


def trigger_get(*, pk):
    return Trigger.objects.filter(pk=pk).first()


def firing_list(*, status=""):
    qs = Firing.objects.select_related("trigger", "ticket").order_by("-created_at", "-id")
    return qs.filter(status=status) if status else qs


def firing_get(*, pk):
    return Firing.objects.select_related("trigger").filter(pk=pk).first()


def schedule_list():
    return Schedule.objects.select_related("template").annotate(
        store_count=Count("stores", distinct=True), run_count=Count("runs", distinct=True)).order_by(
        "-is_active", "next_run_at", "name")


def schedule_get(*, pk):
    return Schedule.objects.select_related("template").prefetch_related("stores").filter(pk=pk).first()


def revisit_list(*, status=RevisitStatus.PLANNED):
    qs = Revisit.objects.select_related("customer", "ticket", "opportunity", "owner", "followup")
    qs = qs.filter(status=status) if status else qs
    return qs.order_by("due_on", "id") if status == RevisitStatus.PLANNED else qs.order_by("-done_at", "-id")


def revisit_get(*, pk):
    return Revisit.objects.select_related("customer", "ticket__template").filter(pk=pk).first()


def customer_grade(*, customer):
    """(grade row or None, next planned revisit or None) for the customer page."""
    grade = CustomerGrade.objects.filter(customer=customer).first()
    revisit = Revisit.objects.filter(customer=customer, status=RevisitStatus.PLANNED).order_by("due_on").first()
    return grade, revisit


def customer_grade_panel(*, customer, user):
    """The customer page's panel: lead grade and the next planned revisit (two small queries)."""
    grade, revisit = customer_grade(customer=customer)
    return {"template": "automation/_customer_panel.html", "grade": grade, "revisit": revisit}
