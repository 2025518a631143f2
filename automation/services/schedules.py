"""Schedule writes: saving a recurring plan (its rule must be possible, its next run in the
future, its targets in the tenant and its field mapping naming fields the template has), and the
beat sweep that carries out due occurrences exactly once per target.

The sweep works a batch of due (schedule, planned time) pairs of one tenant in one transaction:
it locks the batch's plans (pk order), moves them on, writes the occurrences' run rows, then one
claim row per target (`ScheduleOccurrence`, unique on schedule × time × target) with a single
INSERT … ON CONFLICT DO NOTHING RETURNING, which says which claims this worker won; only those
get a ticket. A second worker waits on the lock and then reads the plans moved on; should it
still reach the claims (a plan put back on an occurrence already run), the unique claim refuses
each target twice. A restart mid-batch rolls the whole batch back, so it is still due.
Templates are read once per tick, not once per ticket."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, Prefetch, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.db import insert_new
from scrm.models import Customer, Store
from tickets.models import Source, TicketTemplate
from tickets.services import ticket_intake

from ..models import Schedule, ScheduleAsset, ScheduleOccurrence, ScheduleRun, TargetKind
from ..recurrence import CronError, Rule, cron_parse, next_run, occurrences, rule_problems
from ..subjects import SCHEDULE_SOURCES

logger = logging.getLogger(__name__)

SCHEDULE_FIELDS = ("name", "template", "title", "data", "recurrence", "every", "weekday", "month_day", "month",
                   "cron", "at_time", "starts_on", "ends_on", "is_active", "target_kind", "mapping")
MAX_TARGETS = 500
MAX_MAPPING = 40


def schedule_rule(schedule) -> Rule:
    return Rule(kind=schedule.recurrence, every=1 if schedule.every is None else schedule.every,
                at=schedule.at_time or datetime.time(0), starts_on=schedule.starts_on, ends_on=schedule.ends_on,
                weekday=schedule.weekday, month_day=schedule.month_day, month=schedule.month, zone=settings.TIME_ZONE,
                cron=schedule.cron or "")


_CRON_FIELD_NAMES = {"minute": _("minute"), "hour": _("hour"), "day": _("day of month"), "month": _("month"),
                     "weekday": _("day of week")}


def cron_message(text: str) -> str | None:
    """What is wrong with a cron rule, for the person typing it (None when it can run)."""
    try:
        cron_parse(text)
    except CronError as exc:
        field = str(_CRON_FIELD_NAMES.get(exc.field, exc.field))
        texts = {
            "empty": _("Write the rule: minute hour day-of-month month day-of-week, e.g. 0 9 1 * *."),
            "too_long": _("The rule is too long (at most 100 characters, 60 values per field)."),
            "field_count": _("A rule has 5 fields (minute hour day-of-month month day-of-week); this one has "
                             "%(n)s.") % {"n": exc.token},
            "syntax": _("The %(field)s field: “%(token)s” is not a number, *, a range a-b or a step */n.")
            % {"field": field, "token": exc.token},
            "range": _("The %(field)s field: “%(token)s” is out of range (minute 0–59, hour 0–23, day 1–31, "
                       "month 1–12, day of week 0–7).") % {"field": field, "token": exc.token},
            "reversed": _("The %(field)s field: the range “%(token)s” runs backwards.")
            % {"field": field, "token": exc.token},
            "step": _("The %(field)s field: a step must be at least 1.") % {"field": field},
            "too_often": _("The rule runs more often than every 5 minutes; a ticket each time would flood the "
                           "queue."),
            "impossible": _("No year has this day (such as 31 February): the rule would never run."),
        }
        return texts.get(exc.code, exc.code)
    return None


def _problem_messages(problems, schedule):
    texts = {
        "unknown": _("Choose how it repeats."),
        "range": _("Give a number between 1 and 366."),
        "required": _("This rule needs this field."),
        "impossible": _("No year has this date (such as 31 February)."),
        "before_start": _("The end date is before the start date."),
    }
    messages = {}
    for field, code in problems.items():
        messages[field] = cron_message(schedule.cron) if field == "cron" else texts[code]
    return messages


@dataclass(frozen=True)
class Target:
    """What one ticket of an occurrence is for: `key` as stored on its claim row."""

    key: str
    label: str = ""
    store: Any = None
    customer: Any = None
    asset: Any = None


def _targets(schedule) -> list[Target]:
    """The schedule's targets from its prefetched relations, in a stable order."""
    kind = schedule.target_kind
    if kind == TargetKind.STORES:
        return [Target(f"store:{s.pk}", s.name, store=s) for s in sorted(schedule.stores.all(), key=lambda s: s.pk)]
    if kind == TargetKind.CUSTOMERS:
        return [Target(f"customer:{c.pk}", c.name, store=c.store, customer=c)
                for c in sorted(schedule.customers.all(), key=lambda c: c.pk)]
    if kind == TargetKind.ASSETS:
        return [Target(f"asset:{a.pk}", f"{a.name}（{a.code}）", store=a.store, customer=a.customer, asset=a)
                for a in sorted(schedule.assets.all(), key=lambda a: a.pk)]
    return [Target("")]


def _target_context(target: Target, day: datetime.date) -> dict:
    """The values a mapping's sources read for one target (keys as in SCHEDULE_SOURCES)."""
    context: dict[str, Any] = {"occurrence.date": day.isoformat()}
    store, customer, asset = target.store, target.customer, target.asset
    if store is not None:
        context.update({"store.name": store.name, "store.code": store.code, "store.address": store.address,
                        "store.phone": store.phone,
                        "region.code": store.region.code if store.region_id else ""})
    if customer is not None:
        context.update({"customer.name": customer.name, "customer.phone": customer.phone,
                        "customer.address": customer.address, "customer.tier": customer.tier})
    if asset is not None:
        context.update({"asset.code": asset.code, "asset.name": asset.name})
    return context


def _check_mapping(schedule, version):
    mapping = schedule.mapping or {}
    if not isinstance(mapping, dict) or len(mapping) > MAX_MAPPING:
        raise ValidationError({"mapping": _("At most %(n)d mapped fields.") % {"n": MAX_MAPPING}})
    keys = {f["key"] for f in version.fields}
    allowed = SCHEDULE_SOURCES[schedule.target_kind]
    for key, source in mapping.items():
        if key not in keys:
            raise ValidationError({"mapping": _("The template “%(template)s” has no field “%(key)s”.") % {
                "template": schedule.template.name, "key": key}})
        if source not in allowed:
            raise ValidationError({"mapping": _("“%(source)s” is not known for this kind of target; use one of: "
                                                "%(known)s.") % {"source": source, "known": ", ".join(allowed)}})


def _check_targets(schedule, stores, customers, assets):
    kind = schedule.target_kind
    chosen = {TargetKind.STORES: stores, TargetKind.CUSTOMERS: customers, TargetKind.ASSETS: assets}
    for field, rows in (("stores", stores), ("customers", customers), ("assets", assets)):
        if rows is not None and len(rows) > MAX_TARGETS:
            raise ValidationError({field: _("At most %(n)d targets.") % {"n": MAX_TARGETS}})
    for field, rows in (("stores", stores), ("customers", customers)):
        if rows is not None and any(row.tenant_id != schedule.tenant_id for row in rows):
            raise ValidationError({field: _("Select a valid choice. That choice is not one of the available "
                                            "choices.")})
    if assets is not None:
        codes = set()
        for number, asset in enumerate(assets, start=1):
            for related in (asset.get("store"), asset.get("customer")):
                if related is not None and related.tenant_id != schedule.tenant_id:
                    raise ValidationError({"assets": _("Line %(n)d: that store or customer is not one of yours.")
                                           % {"n": number}})
            code, name = (asset.get("code") or "").strip(), (asset.get("name") or "").strip()
            if not code or not name or len(code) > 40 or len(name) > 80:
                raise ValidationError({"assets": _("Line %(n)d: give a code (at most 40 characters) and a name (at "
                                                   "most 80).") % {"n": number}})
            if code in codes:
                raise ValidationError({"assets": _("Line %(n)d: the code %(code)s is listed twice.")
                                       % {"n": number, "code": code}})
            codes.add(code)
    if kind in chosen:
        rows = chosen[kind]
        has_rows = bool(rows) if rows is not None else _saved_targets(schedule, kind)
        if not has_rows:
            field = {TargetKind.STORES: "stores", TargetKind.CUSTOMERS: "customers", TargetKind.ASSETS: "assets"}[kind]
            raise ValidationError({field: _("Choose at least one target for this kind of plan.")})


def _saved_targets(schedule, kind) -> bool:
    if schedule.pk is None:
        return False
    related = {TargetKind.STORES: schedule.stores, TargetKind.CUSTOMERS: schedule.customers,
               TargetKind.ASSETS: schedule.assets}[kind]
    return related.exists()


def _schedule_save(schedule, fields, now, *, stores=None, customers=None, assets=None):
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
    if schedule.target_kind not in TargetKind.values:
        raise ValidationError({"target_kind": _("Choose what each run makes a ticket for.")})
    if schedule.recurrence != "cron":
        schedule.cron = ""
        if schedule.at_time is None:
            raise ValidationError({"at_time": _("This rule needs this field.")})
    elif schedule.at_time is None:
        schedule.at_time = datetime.time(0)  # unused by a cron rule, which carries its own times
    problems = rule_problems(schedule_rule(schedule))
    if problems:
        raise ValidationError(_problem_messages(problems, schedule))
    _check_targets(schedule, stores, customers, assets)
    _check_mapping(schedule, template.current_version)
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
    if customers is not None:
        schedule.customers.set(customers)
    if assets is not None:
        _assets_set(schedule, assets)
    return schedule


def _assets_set(schedule, assets):
    """Replace the asset list, keeping the rows (and so the claims' keys) of codes still listed."""
    existing = {a.code: a for a in ScheduleAsset.objects.filter(schedule=schedule)}
    keep = []
    for line in assets:
        code = line["code"].strip()
        row = existing.pop(code, None) or ScheduleAsset(tenant_id=schedule.tenant_id, schedule=schedule, code=code)
        row.name, row.store, row.customer = line["name"].strip(), line.get("store"), line.get("customer")
        row.save()
        keep.append(row)
    if existing:
        ScheduleAsset.objects.filter(pk__in=[a.pk for a in existing.values()]).delete()
    return keep


@transaction.atomic
def schedule_create(*, tenant, name, template, recurrence, starts_on, at_time=None, stores=(), customers=(),
                    assets=(), now=None, **fields):
    unknown = set(fields) - set(SCHEDULE_FIELDS)
    if unknown:
        raise TypeError(f"schedule_create got unknown fields {sorted(unknown)}")
    now = now or timezone.now()
    if starts_on < timezone.localdate(now):
        raise ValidationError({"starts_on": _("The start date is in the past.")})
    stores, customers, assets = list(stores), list(customers), list(assets)
    if "target_kind" not in fields and stores:
        fields["target_kind"] = TargetKind.STORES  # the plans written before targets had a kind
    schedule = Schedule(tenant=tenant)
    return _schedule_save(schedule, dict(name=name, template=template, recurrence=recurrence, at_time=at_time,
                                         starts_on=starts_on, **fields), now,
                          stores=stores, customers=customers, assets=assets)


@transaction.atomic
def schedule_update(*, schedule, stores=None, customers=None, assets=None, now=None, **fields):
    unknown = set(fields) - set(SCHEDULE_FIELDS)
    if unknown:
        raise TypeError(f"schedule_update got unknown fields {sorted(unknown)}")
    return _schedule_save(schedule, fields, now or timezone.now(), stores=None if stores is None else list(stores),
                          customers=None if customers is None else list(customers),
                          assets=None if assets is None else list(assets))


PREVIEW_FIELDS = ("recurrence", "every", "weekday", "month_day", "month", "cron", "at_time", "starts_on", "ends_on")


def schedule_preview(*, fields, now=None, limit=5) -> tuple[list, str | None]:
    """The next runs of a plan's rule as typed in its form, nothing saved: (moments, problem),
    the problem saying why there are none."""
    schedule = Schedule(**{f: fields.get(f) for f in PREVIEW_FIELDS})
    schedule.every = schedule.every or 1
    if schedule.recurrence == "cron":
        problem = cron_message(schedule.cron or "")
        if problem:
            return [], problem
    rule = schedule_rule(schedule)
    moments = [] if rule_problems(rule) else occurrences(rule, after=now or timezone.now(), limit=limit)
    return moments, (None if moments else _("This rule has no run in the future."))


def schedule_upcoming(schedule, *, after=None, until=None, limit=12):
    """The schedule's next run times (the calendar view)."""
    if not schedule.is_active or schedule.next_run_at is None:
        return []
    start = schedule.next_run_at - datetime.timedelta(seconds=1)
    if after is not None and after > start:
        start = after
    return occurrences(schedule_rule(schedule), after=start, until=until, limit=limit)


def schedules_due(*, now=None, limit=10_000):
    """(tenant id, schedule id, planned time) of active schedules due now, oldest first: what
    one tick carries out (the partial index `schedule_due` makes it follow the due count)."""
    now = now or timezone.now()
    return list(Schedule.objects.filter(is_active=True, next_run_at__lte=now).order_by("next_run_at").values_list(
        "tenant_id", "pk", "next_run_at")[:limit])


class TickCache:
    """What one tick reads once and reuses: templates with their published versions, and the
    field types of each version (a tick's schedules mostly share a few templates)."""

    def __init__(self):
        self.templates: dict[int, Any] = {}
        self.field_types: dict[int, dict[str, str]] = {}

    def load(self, template_ids):
        missing = set(template_ids) - set(self.templates)
        if missing:
            self.templates.update(TicketTemplate.objects.select_related("current_version").in_bulk(missing))

    def kinds(self, version) -> dict[str, str]:
        if version.pk not in self.field_types:
            self.field_types[version.pk] = {f["key"]: f["type"] for f in version.fields}
        return self.field_types[version.pk]


def _ticket_data(schedule, kinds, target: Target, day: datetime.date) -> dict:
    data = dict(schedule.data or {})
    if target.store is not None:
        for key, kind in kinds.items():
            if kind == "store":
                data[key] = str(target.store.pk)
            elif kind == "region" and target.store.region_id:
                data[key] = str(target.store.region_id)
    if target.customer is not None:
        for key, kind in kinds.items():
            if kind == "customer":
                data[key] = str(target.customer.pk)
    if schedule.mapping:
        context = _target_context(target, day)
        for key, source in schedule.mapping.items():
            value = context.get(source)
            if value not in (None, ""):
                data[key] = value
    for key, kind in kinds.items():
        if kind == "date" and key not in data:
            data[key] = day.isoformat()
    return data


def _claim(rows):
    """Insert the claim rows; the ones this call won (a savepoint per row where the database
    cannot say in one statement which rows went in)."""
    won = insert_new(rows, key="key")
    if won is not None:
        return won
    won = []
    for row in rows:
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            continue
        won.append(row)
    return won


def schedule_occurrences_run(items, *, now=None, cache=None):
    """Carry out the due occurrences `items` — (schedule id, planned time) pairs of the tenant in
    scope — in one transaction: returns the runs that made at least one claim. A pair whose
    schedule changed since it was read (edited, switched off, another worker moved it on) is
    skipped; a target already claimed gets no second ticket.

    The batch runs without a savepoint per plan (two statements per plan saved); should one
    plan's tickets fail, the batch rolls back and is redone one plan at a time, each in its own
    savepoint, so the others are made and the failing run records its error."""
    now = now or timezone.now()
    cache = cache or TickCache()
    try:
        return _occurrences_run(items, now=now, cache=cache, isolated=len(items) == 1)
    except (ValidationError, ValueError):
        if len(items) == 1:
            raise
    runs = []
    for item in items:
        runs += _occurrences_run([item], now=now, cache=cache, isolated=True)
    return runs


def _occurrences_run(items, *, now, cache, isolated):
    planned = dict(items)
    if not planned:
        return []
    with transaction.atomic():
        # Locked in pk order: two workers with overlapping batches queue instead of deadlocking,
        # and the second then reads the plans already moved on and skips them.
        schedules = list(Schedule.objects.filter(pk__in=planned, is_active=True).select_related(
            "tenant").select_for_update(of=("self",)).order_by("pk").prefetch_related(
            Prefetch("stores", queryset=Store.objects.select_related("region")),
            Prefetch("customers", queryset=Customer.objects.select_related("store__region")),
            Prefetch("assets", queryset=ScheduleAsset.objects.select_related("store__region", "customer"))))
        schedules = [s for s in schedules if s.next_run_at == planned[s.pk]]
        if not schedules:
            return []
        cache.load({s.template_id for s in schedules})
        # Move each plan on, only if it still waits for this occurrence: a worker that lost the
        # race matches nothing here once the winner has committed.
        following = {s.pk: next_run(schedule_rule(s), after=max(planned[s.pk], now)) for s in schedules}
        matching = Q()
        for s in schedules:
            matching |= Q(pk=s.pk, next_run_at=planned[s.pk])
        Schedule.objects.filter(matching).update(
            next_run_at=Case(*[When(pk=pk, then=Value(moment)) for pk, moment in following.items()],
                             default=Value(None), output_field=DateTimeField()), last_run_at=now)
        ScheduleRun.objects.bulk_create(
            [ScheduleRun(tenant_id=s.tenant_id, schedule=s, planned_at=planned[s.pk]) for s in schedules],
            ignore_conflicts=True)
        run_of = {}
        run_filter = Q()
        for s in schedules:
            run_filter |= Q(schedule_id=s.pk, planned_at=planned[s.pk])
        for run in ScheduleRun.objects.filter(run_filter):
            run_of[run.schedule_id] = run
        targets = {s.pk: _targets(s) for s in schedules}
        claims = [ScheduleOccurrence(tenant_id=s.tenant_id, schedule_id=s.pk, run=run_of[s.pk],
                                     planned_at=planned[s.pk], target=t.key,
                                     key=f"{s.pk}|{planned[s.pk].timestamp():.0f}|{t.key}")
                  for s in schedules for t in targets[s.pk]]
        won: dict[int, dict[str, ScheduleOccurrence]] = {}
        for claim in _claim(claims):
            won.setdefault(claim.schedule_id, {})[claim.target] = claim
        made, failed_runs, links = [], [], []
        for schedule in schedules:
            mine = won.get(schedule.pk)
            if not mine:
                continue
            run = run_of[schedule.pk]
            chosen = [t for t in targets[schedule.pk] if t.key in mine]
            if not isolated:
                tickets = _tickets_make(schedule, chosen, planned[schedule.pk], cache)
            else:
                try:
                    with transaction.atomic():
                        tickets = _tickets_make(schedule, chosen, planned[schedule.pk], cache)
                except (ValidationError, ValueError) as exc:
                    logger.warning("schedule %s: occurrence %s failed: %s", schedule.pk, planned[schedule.pk], exc)
                    run.error = " ".join(getattr(exc, "messages", [str(exc)]))[:500]
                    failed_runs.append(run)
                    continue
            for target_key, ticket in tickets:
                mine[target_key].ticket = ticket
                links.append(ScheduleRun.tickets.through(schedulerun_id=run.pk, ticket_id=ticket.pk))
            made.append(run)
        filled = [claim for mine in won.values() for claim in mine.values() if claim.ticket_id]
        ScheduleOccurrence.objects.bulk_update(filled, ["ticket"], batch_size=1000)
        ScheduleRun.tickets.through.objects.bulk_create(links, batch_size=1000, ignore_conflicts=True)
        if failed_runs:
            ScheduleRun.objects.bulk_update(failed_runs, ["error"])
        return made + failed_runs


def _tickets_make(schedule, targets, planned_at, cache):
    template = cache.templates.get(schedule.template_id)
    version = template.current_version if template is not None else None
    if template is None or version is None or not template.is_active:
        raise ValidationError(_("The template of this plan is not published any more."))
    kinds = cache.kinds(version)
    local_day = timezone.localdate(planned_at)
    title_base = schedule.title or schedule.name
    description = _("Planned by the schedule “%(name)s” for %(date)s.") % {"name": schedule.name,
                                                                          "date": local_day.isoformat()}
    made = []
    for target in targets:
        title = f"{title_base} · {target.label}" if target.label else title_base
        ticket = ticket_intake(
            tenant=schedule.tenant, source=Source.STAFF, template=template, data=_ticket_data(
                schedule, kinds, target, local_day),
            audience="staff", partial=True, title=title[:120], store=target.store, customer=target.customer,
            description=description)
        made.append((target.key, ticket))
    return made


def schedule_occurrence_run(*, schedule_id, planned_at, now=None):
    """Carry out one occurrence of one schedule, if this call wins it: the run, or None when
    another worker has it (or the schedule changed)."""
    runs = schedule_occurrences_run([(schedule_id, planned_at)], now=now)
    return runs[0] if runs else None
