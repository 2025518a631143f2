"""Workflow configuration writes: create, edit the draft, publish a frozen version, export and
import, and the presets that come with the template presets. The engine (engine.py) runs them.
Also the business calendars SLA deadlines count in: create, update, import holidays from a file."""

import datetime

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from . import sla
from .actions import ACTIONS, action_params_errors
from .graph import graph_validate
from .models import (
    WEEKDAY_LABELS,
    BusinessCalendar,
    CalendarDay,
    CalendarDayKind,
    Workflow,
    WorkflowVersion,
    calendar_error,
)
from .presets import workflow_preset_get

EXPORT_FORMAT = "scrm.workflow/1"


def _field_keys(template):
    version = template.current_version
    fields = version.fields if version is not None else template.draft_fields
    return {f["key"] for f in fields}


@transaction.atomic
def workflow_create(*, template, name="", graph=None):
    if Workflow.objects.filter(template=template).exists():
        raise ValidationError({"template": _("This template already has a workflow.")})
    workflow = Workflow(tenant_id=template.tenant_id, template=template, name=(name or template.name)[:60],
                        draft=graph or {"nodes": [], "transitions": []})
    workflow.full_clean(exclude=["tenant", "template", "current_version"])
    workflow.save()
    return workflow


@transaction.atomic
def workflow_draft_set(*, workflow, graph, name=None):
    """Save a draft; it may be incomplete (validation happens at publish), but must be a graph."""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes", []), list) or not isinstance(
            graph.get("transitions", []), list):
        raise ValidationError({"graph": _("A workflow is {\"nodes\": […], \"transitions\": […]}.")})
    workflow.draft = {"nodes": graph.get("nodes", []), "transitions": graph.get("transitions", [])}
    if name:
        workflow.name = name[:60]
    workflow.save(update_fields=["draft", "name", "updated_at"])
    return workflow


@transaction.atomic
def workflow_publish(*, workflow, actor=None):
    """Validate the draft against its template's fields and freeze it as a new version."""
    # of=("self",): PostgreSQL refuses FOR UPDATE on the nullable side of the outer join.
    workflow = (Workflow.objects.select_for_update(of=("self",)).select_related("template__current_version")
                .get(pk=workflow.pk))
    graph = graph_validate(workflow.draft, field_keys=_field_keys(workflow.template), action_names=set(ACTIONS))
    if errors := action_params_errors(graph):
        raise ValidationError({"graph": errors})
    current = workflow.current_version
    if current is not None and current.graph == graph:
        raise ValidationError({"graph": _("Nothing changed since version %(n)d.") % {"n": current.number}})
    number = (workflow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = WorkflowVersion.objects.create(tenant_id=workflow.tenant_id, workflow=workflow, number=number,
                                             graph=graph, published_by=actor)
    workflow.current_version = version
    workflow.save(update_fields=["current_version", "updated_at"])
    return version


def workflow_export(*, workflow):
    return {"format": EXPORT_FORMAT, "name": workflow.name, "template": workflow.template.slug,
            "graph": workflow.draft}


@transaction.atomic
def workflow_import(*, template, payload, publish=False, actor=None):
    if not isinstance(payload, dict) or payload.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise ValidationError(_("The file does not describe a workflow."))
    graph = payload.get("graph")
    workflow = Workflow.objects.filter(template=template).first()
    if workflow is None:
        workflow = workflow_create(template=template, name=str(payload.get("name") or template.name))
    workflow_draft_set(workflow=workflow, graph=graph, name=str(payload.get("name") or ""))
    if publish:
        workflow.current_version = workflow_publish(workflow=workflow, actor=actor)
    return workflow


@transaction.atomic
def workflow_from_preset(*, template, preset_slug, publish=True, actor=None):
    preset = workflow_preset_get(preset_slug)
    if preset is None:
        raise ValidationError({"preset": _("Unknown workflow preset.")})
    return workflow_import(template=template, payload=preset, publish=publish, actor=actor)


# --- business calendars ---------------------------------------------------------------------

CALENDAR_DAYS_FORMAT = "scrm.calendar-days/1"
CALENDAR_FORMAT = "scrm.calendar/1"
MAX_IMPORT_BYTES = 256 * 1024
MAX_IMPORT_DAYS = 2000
MAX_RANGE_DAYS = 366
CALENDAR_FIELDS = ("name", "time_zone", "is_24x7", "weekly_hours", "is_default")


def _calendar_own(calendar):
    """Refuse a calendar the open tenant scope does not see (another tenant's, or deleted)."""
    if calendar is None or calendar.pk is None or not BusinessCalendar.objects.filter(pk=calendar.pk).exists():
        raise ValidationError({"calendar": _("Select a valid choice. That choice is not one of the available "
                                             "choices.")})


def _calendar_check(calendar):
    """Field rules (validators), the name unique in the tenant, and some working time."""
    calendar.full_clean(exclude=["tenant"], validate_unique=False, validate_constraints=False)
    if BusinessCalendar.objects.filter(name=calendar.name).exclude(pk=calendar.pk).exists():
        raise ValidationError({"name": _("A calendar with this name already exists.")})
    if not calendar.is_24x7 and sla.weekly_parse(calendar.weekly_hours) == ((),) * 7:
        raise ValidationError({"weekly_hours": _("The calendar has no working hours at all: give some weekday "
                                                 "its hours, or make it 24×7.")})


def _calendar_save(calendar, *, fields=None):
    if calendar.is_default:  # the one default of the tenant (a partial unique index holds it)
        for other in BusinessCalendar.objects.filter(is_default=True).exclude(pk=calendar.pk):
            other.is_default = False
            other.save(update_fields=["is_default", "updated_at"])
    # Stored in normal form: sorted, touching intervals merged, every weekday present.
    calendar.weekly_hours = sla.weekly_dump(sla.weekly_parse(calendar.weekly_hours))
    calendar.save(update_fields=fields)
    return calendar


@transaction.atomic
def calendar_create(*, tenant, name, time_zone="Asia/Shanghai", weekly_hours=None, is_24x7=False,
                    is_default=None):
    """A business calendar. The first one of a tenant is its default unless is_default=False."""
    if is_default is None:
        is_default = not BusinessCalendar.objects.exists()
    calendar = BusinessCalendar(tenant=tenant, name=(name or "").strip(), time_zone=time_zone,
                                weekly_hours=weekly_hours if weekly_hours is not None else {},
                                is_24x7=is_24x7, is_default=is_default)
    _calendar_check(calendar)
    return _calendar_save(calendar)


@transaction.atomic
def calendar_update(*, calendar, **changes):
    """Change a calendar's name, time zone, 24×7, weekly hours or default flag; its version grows."""
    _calendar_own(calendar)
    unknown = set(changes) - set(CALENDAR_FIELDS)
    if unknown:
        raise TypeError(f"calendar_update() got unknown fields {sorted(unknown)}")
    calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
    for field, value in changes.items():
        setattr(calendar, field, value.strip() if field == "name" and isinstance(value, str) else value)
    _calendar_check(calendar)
    calendar.version += 1
    return _calendar_save(calendar)


def _date(value, where):
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(_("%(where)s: “%(value)s” is not a date (YYYY-MM-DD).")
                              % {"where": where, "value": str(value)[:40]}) from None


def _workday_hours(entry, where, default_like):
    """(hours_like, hours) of a make-up day entry: `hours` intervals, or `like` a weekday name."""
    if isinstance(entry, dict) and entry.get("hours") is not None:
        if entry.get("like") is not None:
            raise ValidationError(_("%(where)s: give either “like” or “hours”, not both.") % {"where": where})
        try:
            hours = sla.hours_parse(entry["hours"])
        except sla.CalendarError as exc:
            raise ValidationError(_("%(where)s: %(message)s")
                                  % {"where": where, "message": " ".join(calendar_error(exc).messages)}) from None
        if not hours:
            raise ValidationError(_("%(where)s: a make-up working day needs working hours.") % {"where": where})
        return None, sla.hours_dump(hours)
    like = (entry.get("like") if isinstance(entry, dict) else None) or default_like
    if like not in sla.WEEKDAYS:
        raise ValidationError(_("%(where)s: “%(value)s” is not a weekday: use mon, tue, wed, thu, fri, sat or sun.")
                              % {"where": where, "value": str(like)[:20]})
    return sla.WEEKDAYS.index(like), None


def calendar_days_parse(payload):
    """The rows a holiday file describes, checked, without writing anything:
    [{"date", "kind", "name", "hours_like", "hours"}], sorted by date. See
    workflow/data/cn_holidays_2026_2027.yaml for the format. A date listed twice is an error."""
    if not isinstance(payload, dict) or payload.get("format", CALENDAR_DAYS_FORMAT) not in (
            CALENDAR_DAYS_FORMAT, CALENDAR_FORMAT) or not isinstance(payload.get("days"), list):
        raise ValidationError(_("The file does not describe calendar days: it needs a “days” list."))
    default_like = payload.get("workday_like", "mon")
    rows: dict[datetime.date, dict] = {}

    def add(day, kind, name, where, hours_like=None, hours=None):
        if day in rows:
            raise ValidationError(_("%(date)s is listed twice (%(first)s, %(second)s).")
                                  % {"date": day.isoformat(), "first": rows[day]["where"], "second": where})
        if len(rows) >= MAX_IMPORT_DAYS:
            raise ValidationError(_("The file lists more than %(n)d days.") % {"n": MAX_IMPORT_DAYS})
        rows[day] = {"date": day, "kind": kind, "name": name, "hours_like": hours_like, "hours": hours,
                     "where": where}

    for number, entry in enumerate(payload["days"], start=1):
        where = _("entry %(n)d") % {"n": number}
        if not isinstance(entry, dict):
            raise ValidationError(_("%(where)s: each entry is a mapping with a date.") % {"where": where})
        name = str(entry.get("name") or "").strip()
        if len(name) > 40:
            raise ValidationError(_("%(where)s: the name is longer than 40 characters.") % {"where": where})
        kind = entry.get("kind", CalendarDayKind.HOLIDAY)
        if kind not in CalendarDayKind.values:
            raise ValidationError(_("%(where)s: the kind is “holiday” or “workday”.") % {"where": where})
        first = _date(entry.get("date", entry.get("from")), where)
        last = _date(entry["to"], where) if entry.get("to") is not None else first
        if last < first or (last - first).days >= MAX_RANGE_DAYS:
            raise ValidationError(_("%(where)s: “to” must be on or after “from”, within a year.") % {"where": where})
        if kind == CalendarDayKind.WORKDAY:
            hours_like, hours = _workday_hours(entry, where, default_like)
        elif entry.get("hours") is not None or entry.get("like") is not None:
            raise ValidationError(_("%(where)s: a holiday has no working hours.") % {"where": where})
        else:
            hours_like = hours = None
        day = first
        while day <= last:
            add(day, kind, name, where, hours_like, hours)
            day += datetime.timedelta(days=1)
        workdays = entry.get("workdays") or []
        if not isinstance(workdays, list):
            raise ValidationError(_("%(where)s: “workdays” is a list of dates.") % {"where": where})
        for extra in workdays:
            day = _date(extra.get("date") if isinstance(extra, dict) else extra, where)
            hours_like, hours = _workday_hours(extra, where, default_like)
            add(day, CalendarDayKind.WORKDAY, name, where, hours_like, hours)
    return [rows[day] for day in sorted(rows)]


@transaction.atomic
def calendar_days_import(*, calendar, payload):
    """Add the holidays and make-up days of a parsed file (a dict, as yaml/json load it) to a
    calendar; a date the calendar already has is replaced. Everything is checked first: any error
    writes nothing. Returns (created, updated)."""
    _calendar_own(calendar)
    rows = calendar_days_parse(payload)
    calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
    week = sla.weekly_parse(calendar.weekly_hours)
    for row in rows:
        if row["kind"] == CalendarDayKind.WORKDAY and row["hours_like"] is not None and not calendar.is_24x7 \
                and not week[row["hours_like"]]:
            raise ValidationError(_("%(where)s: %(date)s would keep the hours of %(day)s, which has none.")
                                  % {"where": row["where"], "date": row["date"].isoformat(),
                                     "day": WEEKDAY_LABELS[row["hours_like"]]})
    existing = {day.date: day for day in
                CalendarDay.objects.filter(calendar=calendar, date__in=[row["date"] for row in rows])}
    created = updated = 0
    for row in rows:
        values = {key: row[key] for key in ("kind", "name", "hours_like", "hours")}
        day = existing.get(row["date"])
        if day is None:
            day = CalendarDay(tenant_id=calendar.tenant_id, calendar=calendar, date=row["date"], **values)
            created += 1
        elif any(getattr(day, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(day, key, value)
            updated += 1
        else:
            continue
        day.full_clean(exclude=["tenant", "calendar"], validate_unique=False, validate_constraints=False)
        day.save()
    if created or updated:
        calendar.version += 1
        calendar.save(update_fields=["version", "updated_at"])
    return created, updated


def calendar_file_load(data):
    """A holiday or calendar file (YAML or JSON, bytes or text) as a dict, or a ValidationError."""
    if isinstance(data, bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise ValidationError(_("The file is larger than %(n)d KB.") % {"n": MAX_IMPORT_BYTES // 1024})
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(_("The file is not UTF-8 text.")) from None
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError(_("The file is larger than %(n)d KB.") % {"n": MAX_IMPORT_BYTES // 1024})
    try:
        # Aliases (&a / *a) can blow a small file up into a huge document: a calendar needs none.
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(data, Loader=yaml.SafeLoader)):
            raise ValidationError(_("YAML aliases (*name) are not allowed in a calendar file."))
        payload = yaml.safe_load(data)
    except yaml.YAMLError:
        raise ValidationError(_("The file is neither YAML nor JSON.")) from None
    except RecursionError:
        raise ValidationError(_("The file is nested too deeply.")) from None
    if not isinstance(payload, dict):
        raise ValidationError(_("The file does not describe calendar days: it needs a “days” list."))
    return payload


def calendar_export(*, calendar):
    """The calendar and its days, in the format calendar_days_import (its days) reads back."""
    days = []
    for day in CalendarDay.objects.filter(calendar=calendar).order_by("date"):
        entry = {"date": day.date.isoformat(), "kind": day.kind, "name": day.name}
        if day.hours_like is not None:
            entry["like"] = sla.WEEKDAYS[day.hours_like]
        if day.hours is not None:
            entry["hours"] = day.hours
        days.append(entry)
    return {"format": CALENDAR_FORMAT, "name": calendar.name, "time_zone": calendar.time_zone,
            "is_24x7": calendar.is_24x7, "weekly_hours": calendar.weekly_hours, "days": days}


@transaction.atomic
def calendar_import(*, tenant, payload):
    """A whole calendar from calendar_export's format (another environment's, say): the calendar
    of the same name is updated, or a new one made, and the file's days added. All or nothing."""
    if not isinstance(payload, dict) or payload.get("format") != CALENDAR_FORMAT:
        raise ValidationError(_("The file does not describe a business calendar."))
    fields = {"name": str(payload.get("name") or "").strip(), "time_zone": payload.get("time_zone") or "",
              "is_24x7": payload.get("is_24x7") is True, "weekly_hours": payload.get("weekly_hours") or {}}
    calendar = BusinessCalendar.objects.filter(name=fields["name"]).first() if fields["name"] else None
    if calendar is None:
        calendar = calendar_create(tenant=tenant, **fields)
    else:
        calendar = calendar_update(calendar=calendar, **fields)
    calendar_days_import(calendar=calendar, payload=payload)
    calendar.refresh_from_db()
    return calendar


@transaction.atomic
def calendar_day_delete(*, calendar, day):
    """Remove one dated exception (the date goes back to its weekday's hours); the version grows."""
    _calendar_own(calendar)
    calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
    row = CalendarDay.objects.filter(calendar=calendar, date=day).first()
    if row is None:
        raise ValidationError({"date": _("The calendar has no entry on that date.")})
    row.delete()
    calendar.version += 1
    calendar.save(update_fields=["version", "updated_at"])
