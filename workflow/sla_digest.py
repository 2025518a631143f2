"""The daily digest of SLA breaches to each regional manager (Celery beat, once a day): the
tickets of their regions whose first-response or resolution deadline fell on that day and was
missed, as one message per manager through the outbox — its own event `sla_breach_digest`
(preferences and template of its own), every manager's rows in one `event_emit_many`. Sent
once per manager and day whatever the number of runs: the outbox row's key names the day."""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from notifications.services import event_emit_many
from scrm.models import Membership, Region, RegionUserObjectPermission, Role

from .models import TicketSla

DIGEST_EVENT = "sla_breach_digest"  # its own preferences and template; title + body
MAX_LINES = 30  # a long day is summed up; the list page has the rest


def day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """[00:00, next 00:00) of `day` in the project's time zone."""
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time()))
    return start, timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time()))


def sla_breaches_of_day(*, day: datetime.date) -> list[TicketSla]:
    """The tenant's SLA rows with a deadline on `day` that was missed, with their tickets, by
    deadline (served by the partial index of breached rows)."""
    start, end = day_bounds(day)
    rows = (TicketSla.objects.filter(Q(response_breached=True, response_due_at__gte=start, response_due_at__lt=end)
                                     | Q(resolution_breached=True, resolution_due_at__gte=start,
                                         resolution_due_at__lt=end))
            .select_related("ticket").order_by("ticket__region_id", "ticket_id"))
    return list(rows)


def regional_managers_regions() -> dict:
    """{regional manager (user): set of region ids they answer for} of the tenant in scope: the
    regions granted to them and those regions' children (as escalation.region_managers reads it)."""
    parents = dict(Region.objects.values_list("id", "parent_id"))
    managers = {m.user_id: m.user for m in Membership.objects.filter(role=Role.REGIONAL_MANAGER, is_active=True)
                .select_related("user")}
    granted: dict[int, set[int]] = defaultdict(set)
    for region_id, user_id in (RegionUserObjectPermission.objects.filter(
            content_object_id__in=list(parents), user_id__in=list(managers))
            .values_list("content_object_id", "user_id")):
        granted[user_id].add(region_id)
    answer = {}
    for user_id, regions in granted.items():
        answer[managers[user_id]] = regions | {r for r, parent in parents.items() if parent in regions}
    return answer


def _line(row: TicketSla, start, end) -> str:
    missed = []
    if row.response_breached and row.response_due_at and start <= row.response_due_at < end:
        missed.append(_("first response due %(time)s") % {
            "time": timezone.localtime(row.response_due_at).strftime("%H:%M")})
    if row.resolution_breached and row.resolution_due_at and start <= row.resolution_due_at < end:
        missed.append(_("resolution due %(time)s") % {
            "time": timezone.localtime(row.resolution_due_at).strftime("%H:%M")})
    return f"{row.ticket.number} {row.ticket.title[:40]} — {'、'.join(missed)}"


@transaction.atomic
def sla_breach_digest_send(*, tenant, day: datetime.date | None = None) -> int:
    """Write today's (or `day`'s) digest for every regional manager of the tenant in scope who
    has breaches in their regions; the number of managers written to (0 on a second run: the
    outbox keeps one row per manager, day and channel)."""
    day = day or timezone.localdate()
    if not isinstance(day, datetime.date):
        raise TypeError("day must be a date")
    rows = sla_breaches_of_day(day=day)
    if not rows:
        return 0
    start, end = day_bounds(day)
    language = (tenant.settings or {}).get("language") or translation.get_language()
    emits = []
    for manager, regions in sorted(regional_managers_regions().items(), key=lambda item: item[0].pk):
        mine = [r for r in rows if r.ticket.region_id in regions]
        if not mine:
            continue
        with translation.override(language):
            title = _("SLA breaches on %(day)s in your regions: %(count)d") % {
                "day": day.strftime("%m-%d"), "count": len(mine)}
            lines = [_line(r, start, end) for r in mine[:MAX_LINES]]
            if len(mine) > MAX_LINES:
                lines.append(_("… and %(count)d more.") % {"count": len(mine) - MAX_LINES})
        emits.append({"event": DIGEST_EVENT, "users": [manager], "occurrence": f"sla-digest:{day}",
                      "context": {"title": title, "body": "\n".join(lines)}})
    # Nothing is written for a manager whose rows all exist already: an earlier run sent them.
    return len({row.user_id for row in event_emit_many(tenant=tenant, emits=emits)})
