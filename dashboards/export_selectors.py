"""Reads of the ticket list's export: the list filter checked strictly (a malformed value or
another tenant's id is an error, not silently dropped), the filtered and visible queryset, its
rows in keyset batches as plain values, and the asker's export jobs."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.models import Store
from tickets.models import Priority, Status, TicketTemplate
from tickets.selectors import ticket_list

from .export_models import ExportJob

SEARCH_MAX = 60  # the list's search box keeps 60 characters
PERIODS = ("today", "week")
FLAGS = ("mine", "open")
# The values one export row needs, joined in the batch's one query (never a query per row).
ROW_FIELDS = ("id", "number", "title", "status", "priority", "source", "template__name", "store__name",
              "customer__name", "assignee__first_name", "assignee__username", "created_at", "resolved_at",
              "closed_at")


def export_filters_check(params: Mapping[str, str]) -> dict[str, Any]:
    """The ticket list's filter keys from a query string, checked: {key: value} of the ones set
    (ids as ints, flags as True). Raises ValidationError naming the bad key; other keys (page,
    per_page, format) are not filters and are left out."""
    clean: dict[str, Any] = {}
    errors: list[str] = []
    search = (params.get("q") or "").strip()
    if len(search) > SEARCH_MAX:
        errors.append(_("The search is longer than %(n)d characters.") % {"n": SEARCH_MAX})
    elif search:
        clean["q"] = search
    for key, values, label in (("status", Status.values, _("status")), ("priority", Priority.values, _("priority"))):
        value = params.get(key) or ""
        if value and value not in values:
            errors.append(_("Unknown %(what)s “%(value)s”.") % {"what": label, "value": value[:20]})
        elif value:
            clean[key] = value
    for key, model, label in (("template", TicketTemplate, _("template")), ("store", Store, _("store"))):
        value = params.get(key) or ""
        if not value:
            continue
        # The model's ScopedManager reads only this tenant: another tenant's id is "no such".
        if not value.isdigit() or not model.objects.filter(pk=int(value)).exists():
            errors.append(_("No such %(what)s: “%(value)s”.") % {"what": label, "value": value[:20]})
        else:
            clean[key] = int(value)
    for key in ("created", "resolved"):
        value = params.get(key) or ""
        if value and value not in PERIODS:
            errors.append(_("Unknown period “%(value)s”.") % {"value": value[:20]})
        elif value:
            clean[key] = value
    for key in FLAGS:
        value = params.get(key) or ""
        if value not in ("", "0", "1"):
            errors.append(_("Malformed filter “%(key)s”.") % {"key": key})
        elif value == "1":
            clean[key] = True
    if errors:
        raise ValidationError(errors)
    return clean


def _since(period: str | None, as_of: datetime.datetime) -> datetime.datetime | None:
    """As the list reads "today" / "week", at the time the export was asked for."""
    if period == "today":
        return timezone.localtime(as_of).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return as_of - datetime.timedelta(days=7)
    return None


def export_tickets(*, user: Any, filters: Mapping[str, Any], as_of: datetime.datetime | None = None) -> QuerySet:
    """The tickets of the list with these (checked) filters, as `user` may see them now."""
    as_of = as_of or timezone.now()
    return ticket_list(
        user=user, search=filters.get("q", ""), status=filters.get("status", ""),
        priority=filters.get("priority", ""), template_id=filters.get("template"), store_id=filters.get("store"),
        mine=bool(filters.get("mine")), open_only=bool(filters.get("open")),
        created_since=_since(filters.get("created"), as_of), resolved_since=_since(filters.get("resolved"), as_of))


def export_count(qs: QuerySet, cap: int) -> int:
    """How many tickets match, counting at most cap + 1 (a LIMIT inside the COUNT)."""
    return qs.order_by()[: cap + 1].count()


def export_top_id(qs: QuerySet) -> int | None:
    """The newest matching id: the job exports up to it, so tickets filed meanwhile stay out."""
    return qs.order_by("-id").values_list("id", flat=True).first()


def export_batches(qs: QuerySet, *, top: int, size: int) -> Iterator[list[dict[str, Any]]]:
    """The matching rows with id ≤ top, newest id first, `size` at a time: each batch is one
    query (`id < last ORDER BY id DESC LIMIT size`, the joins in it), whatever the table's size —
    no OFFSET, and no cursor held open between batches."""
    below = top + 1
    rows = qs.order_by("-id").values(*ROW_FIELDS)
    while True:
        batch = list(rows.filter(id__lt=below)[:size])
        if not batch:
            return
        yield batch
        below = batch[-1]["id"]


def export_job_get(*, user: Any, pk: int) -> ExportJob | None:
    """The user's own export job in the tenant in scope, or None (someone else's or another
    tenant's is "no such export")."""
    return ExportJob.objects.filter(pk=pk, requested_by=user).first()


def export_jobs_mine(*, user: Any, limit: int = 20) -> list[ExportJob]:
    return list(ExportJob.objects.filter(requested_by=user).order_by("-created_at", "-id")[:limit])


def export_jobs_active_count(*, user: Any) -> int:
    return ExportJob.objects.filter(requested_by=user, state__in=("queued", "running")).count()


def export_jobs_expired(*, now: datetime.datetime) -> QuerySet:
    """Jobs whose download has expired and whose file is still on disk."""
    return ExportJob.objects.filter(expires_at__lte=now).exclude(file_name="")


def export_filter_labels(filters: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The stored filter in words, for the job's page."""
    names = {"q": _("Search"), "status": _("Status"), "priority": _("Priority"), "template": _("Template"),
             "store": _("Store"), "mine": _("Mine only"), "open": _("Open only"), "created": _("Created"),
             "resolved": _("Resolved")}
    periods = {"today": _("Today"), "week": _("Last 7 days")}
    shown: list[tuple[str, Any]] = []
    for key, value in filters.items():
        if key == "status":
            value = Status(value).label
        elif key == "priority":
            value = Priority(value).label
        elif key == "template":
            value = TicketTemplate.objects.filter(pk=value).values_list("name", flat=True).first() or "—"
        elif key == "store":
            value = Store.objects.filter(pk=value).values_list("name", flat=True).first() or "—"
        elif key in ("created", "resolved"):
            value = periods.get(value, value)
        elif value is True:
            value = _("Yes")
        shown.append((names.get(key, key), value))
    return shown
