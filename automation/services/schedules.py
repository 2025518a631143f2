"""Schedule writes: saving a recurring plan (its rule must be possible and its next run in the
future), and the beat sweep that carries out due occurrences exactly once — each schedule is
claimed by moving its `next_run_at` forward with a conditional UPDATE, in the same transaction
that writes the occurrence's run row and tickets, so two workers (or a restart mid-tick) never
create an occurrence twice and a crash leaves it due."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.models import Store
from tickets.models import Source
from tickets.services import ticket_intake

from ..models import Schedule, ScheduleRun
from ..recurrence import Rule, next_run, occurrences, rule_problems

SCHEDULE_FIELDS = ("name", "template", "title", "data", "recurrence", "every", "weekday", "month_day", "month",
                   "at_time", "starts_on", "ends_on", "is_active")
MAX_STORES = 500


def schedule_rule(schedule) -> Rule:
    return Rule(kind=schedule.recurrence, every=1 if schedule.every is None else schedule.every, at=schedule.at_time,
                starts_on=schedule.starts_on, ends_on=schedule.ends_on, weekday=schedule.weekday,
                month_day=schedule.month_day, month=schedule.month, zone=settings.TIME_ZONE)


def _problem_messages(problems):
    texts = {
        "unknown": _("Choose how it repeats."),
        "range": _("Give a number between 1 and 366."),
        "required": _("This rule needs this field."),
        "impossible": _("No year has this date (such as 31 February)."),
        "before_start": _("The end date is before the start date."),
    }
    field_of = {"recurrence": "recurrence", "every": "every", "weekday": "weekday", "month_day": "month_day",
                "month": "month", "ends_on": "ends_on"}
    return {field_of[k]: texts[v] for k, v in problems.items()}


def _schedule_save(schedule, fields, stores, now):
    for key, value in fields.items():
        setattr(schedule, key, value)
    if not (schedule.name or "").strip():
        raise ValidationError({"name": _("Name the schedule.")})
    template = schedule.template
    if template is None or template.tenant_id != schedule.tenant_id:
        raise ValidationError({"template": _("Select a valid choice. That choice is not one of the available "
                                             "choices.")})
    if template.current_version_id is None or not template.is_active:
        raise ValidationError({"template": _("This template is not published.")})
    if stores is not None:
        if len(stores) > MAX_STORES:
            raise ValidationError({"stores": _("At most %(n)d stores.") % {"n": MAX_STORES}})
        if any(store.tenant_id != schedule.tenant_id for store in stores):
            raise ValidationError({"stores": _("Select a valid choice. That choice is not one of the available "
                                               "choices.")})
    problems = rule_problems(schedule_rule(schedule))
    if problems:
        raise ValidationError(_problem_messages(problems))
    if Schedule.objects.filter(name=schedule.name).exclude(pk=schedule.pk).exists():
        raise ValidationError({"name": _("A schedule with this name already exists.")})
    upcoming = next_run(schedule_rule(schedule), after=now)
    if schedule.is_active and upcoming is None:
        raise ValidationError({"ends_on": _("This plan has no run left in the future: change its dates.")})
    schedule.next_run_at = upcoming
    schedule.full_clean(exclude=["tenant", "template"])
    schedule.save()
    if stores is not None:
        schedule.stores.set(stores)
    return schedule


@transaction.atomic
def schedule_create(*, tenant, name, template, recurrence, at_time, starts_on, stores=(), now=None, **fields):
    unknown = set(fields) - set(SCHEDULE_FIELDS)
    if unknown:
        raise TypeError(f"schedule_create got unknown fields {sorted(unknown)}")
    now = now or timezone.now()
    if starts_on < timezone.localdate(now):
        raise ValidationError({"starts_on": _("The start date is in the past.")})
    schedule = Schedule(tenant=tenant)
    return _schedule_save(schedule, dict(name=name, template=template, recurrence=recurrence, at_time=at_time,
                                         starts_on=starts_on, **fields), list(stores), now)


@transaction.atomic
def schedule_update(*, schedule, stores=None, now=None, **fields):
    unknown = set(fields) - set(SCHEDULE_FIELDS)
    if unknown:
        raise TypeError(f"schedule_update got unknown fields {sorted(unknown)}")
    return _schedule_save(schedule, fields, None if stores is None else list(stores), now or timezone.now())


def schedule_upcoming(schedule, *, after=None, until=None, limit=12):
    """The schedule's next run times (the calendar view)."""
    if not schedule.is_active or schedule.next_run_at is None:
        return []
    start = schedule.next_run_at - datetime.timedelta(seconds=1)
    if after is not None and after > start:
        start = after
    return occurrences(schedule_rule(schedule), after=start, until=until, limit=limit)


def schedules_due(*, now=None, limit=1000):
    """(tenant id, schedule id, planned time) of active schedules due now, oldest first: what
    one tick carries out (the partial index `schedule_due` makes it follow the due count)."""
    now = now or timezone.now()
    return list(Schedule.objects.filter(is_active=True, next_run_at__lte=now).order_by("next_run_at").values_list(
        "tenant_id", "pk", "next_run_at")[:limit])


def schedule_occurrence_run(*, schedule_id, planned_at, now=None):
    """Carry out the occurrence of `schedule_id` planned at `planned_at`, if this call wins it:
    returns the run, or None when another worker has it (or the schedule changed). One ticket per
    chosen store (one ticket when none is chosen), from the schedule's template."""
    now = now or timezone.now()
    with transaction.atomic():
        schedule = Schedule.objects.select_related("template__current_version", "tenant").filter(
            pk=schedule_id).first()
        if schedule is None:
            return None
        following = next_run(schedule_rule(schedule), after=max(planned_at, now))
        claimed = Schedule.objects.filter(pk=schedule_id, is_active=True, next_run_at=planned_at).update(
            next_run_at=following, last_run_at=now)
        if not claimed:
            return None
        try:
            with transaction.atomic():
                run = ScheduleRun.objects.create(tenant=schedule.tenant, schedule=schedule, planned_at=planned_at)
        except IntegrityError:
            return None  # carried out before (a restored backup, a hand-edited next run)
        tickets = []
        stores: list[Store | None] = list(schedule.stores.select_related("region").order_by("pk")) or [None]
        version = schedule.template.current_version
        assert version is not None  # a schedule's template is published (checked at save)
        local_day = timezone.localdate(planned_at)
        for store in stores:
            data = dict(schedule.data or {})
            keys = {f["key"]: f["type"] for f in version.fields}
            if store is not None:
                for key, kind in keys.items():
                    if kind == "store":
                        data[key] = str(store.pk)
                    elif kind == "region":
                        data[key] = str(store.region_id)
            for key, kind in keys.items():
                if kind == "date" and key not in data:
                    data[key] = local_day.isoformat()
            title = schedule.title or schedule.name
            if store is not None:
                title = f"{title} · {store.name}"
            tickets.append(ticket_intake(
                tenant=schedule.tenant, source=Source.STAFF, template=schedule.template, data=data,
                audience="staff", partial=True, title=title[:120], store=store,
                description=_("Planned by the schedule “%(name)s” for %(date)s.") % {
                    "name": schedule.name, "date": local_day.isoformat()},
            ))
        run.tickets.set(tickets)
        return run
