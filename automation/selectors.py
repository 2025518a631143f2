"""Automation reads for the pages and the customer panel, each a constant number of queries."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q

from .models import (
    CustomerGrade,
    Firing,
    LeadGrade,
    LeadRule,
    Revisit,
    RevisitStatus,
    Schedule,
    ScheduleAsset,
    ScheduleRun,
    Trigger,
)


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
        store_count=Count("stores", distinct=True), customer_count=Count("customers", distinct=True),
        asset_count=Count("assets", distinct=True), run_count=Count("runs", distinct=True)).order_by(
        "-is_active", "next_run_at", "name")


def schedule_get(*, pk):
    return Schedule.objects.select_related("template").prefetch_related(
        "stores", "customers", Prefetch("assets", queryset=ScheduleAsset.objects.select_related("store"))).filter(
        pk=pk).first()


def schedule_runs(*, schedule, limit=10):
    """The schedule's latest runs with their ticket counts (the edit page's history)."""
    return list(ScheduleRun.objects.filter(schedule=schedule).annotate(ticket_count=Count("tickets")).order_by(
        "-planned_at")[:limit])


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
    """The customer page's panel: lead grade, source, last contact and the next step — the
    planned revisit, else the tier's follow-up plan (at most three small queries)."""
    grade, revisit = customer_grade(customer=customer)
    plan = None
    if revisit is None and grade is not None:
        plan = LeadRule.objects.filter(grade=grade.grade, is_active=True).exclude(followup_reason="").first()
    return {"template": "automation/_customer_panel.html", "grade": grade, "revisit": revisit, "plan": plan,
            "customer": customer}


def lead_rules_by_grade():
    """{grade: rule or None} for A–D (the lead tiers page)."""
    rules = {rule.grade: rule for rule in LeadRule.objects.all()}
    return {grade: rules.get(grade) for grade in LeadGrade.values}


def lead_grade_counts():
    """{grade: number of customers} for the lead tiers page."""
    return dict(CustomerGrade.objects.values_list("grade").annotate(n=Count("pk")).values_list("grade", "n"))
