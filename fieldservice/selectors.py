"""Reads of the field-service pages: an engineer's visits of the day (今日任务), one visit, and
the manager's day of check-ins with the plotted positions. A constant number of queries each."""

import datetime
import math
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from tickets.geo import Point
from tickets.models import OPEN_STATUSES, SiteVisit, Ticket
from tickets.selectors import visible_tickets
from tickets.selectors_visits import site_checkins, ticket_address_text, ticket_site_point, visits_by_ticket
from workflow.models import Task, TaskStatus

from . import slots

TODAY_LIMIT = 60  # an engineer's open work shown on the phone; more than a day's worth
DUE_SOON = datetime.timedelta(hours=2)


@dataclass
class VisitRow:
    """One line of 今日任务."""

    ticket: Ticket
    address: str
    site: Point | None
    starts_at: datetime.datetime | None
    ends_at: datetime.datetime | None
    phone: str
    due_at: datetime.datetime | None
    sla_state: str  # "" (no deadline), "ok", "due_soon", "overdue"
    node_name: str
    visit: SiteVisit | None
    parts: list = field(default_factory=list)

    @property
    def nav_url(self) -> str:
        return navigation_url(site=self.site, address=self.address)

    @property
    def state(self) -> str:
        """"todo", "on_site" (checked in), "done" (checked out)."""
        if self.visit is None:
            return "todo"
        return "on_site" if self.visit.is_open else "done"


def navigation_url(*, site: Point | None, address: str) -> str:
    """Amap's URI API: opens the Amap app (or its web page inside WeCom) with a route to the
    site; without coordinates, a search for the address."""
    if site is not None:
        datum = "gaode" if getattr(settings, "FIELDSERVICE_DATUM", "gcj02") == "gcj02" else "wgs84"
        return "https://uri.amap.com/navigation?" + urlencode({
            "to": f"{site.lng},{site.lat},{address[:40]}", "mode": "car", "coordinate": datum, "callnative": 1})
    if address:
        return "https://uri.amap.com/search?" + urlencode({"keyword": address[:80], "callnative": 1})
    return ""


def _aware(value: str) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def appointment(ticket) -> datetime.datetime | None:
    """When the visit is booked: the template's first datetime field with a value, else its first
    date field combined with its first time field (09:00 when it has none)."""
    fields = ticket.template_version.fields
    data = ticket.data
    for f in fields:
        if f.get("type") == "datetime" and data.get(f["key"]):
            moment = _aware(str(data[f["key"]]))
            if moment is not None:
                return moment
    day = next((data[f["key"]] for f in fields if f.get("type") == "date" and data.get(f["key"])), None)
    if not day:
        return None
    time = next((data[f["key"]] for f in fields if f.get("type") == "time" and data.get(f["key"])), "09:00")
    return _aware(f"{str(day)[:10]}T{str(time)[:5]}")


def ticket_phone(ticket) -> str:
    for f in ticket.template_version.fields:
        if f.get("type") == "phone" and ticket.data.get(f["key"]):
            return str(ticket.data[f["key"]])
    return ticket.customer.phone if ticket.customer_id and ticket.customer.phone else ""


def sla_state(due_at, now) -> str:
    if due_at is None:
        return ""
    if due_at < now:
        return "overdue"
    return "due_soon" if due_at - now <= DUE_SOON else "ok"


def my_open_tickets(*, user):
    """Open tickets the engineer holds: assigned to them, or with an open task of theirs."""
    holding = Task.objects.filter(Q(assignee=user) | Q(backup=user) | Q(co_handlers=user), status=TaskStatus.OPEN)
    return Ticket.objects.filter(Q(assignee=user) | Q(pk__in=holding.values("ticket_id")),
                                 status__in=OPEN_STATUSES)


def today_visits(*, user, day=None, now=None):
    """(today's rows in time order, the other open work) for the engineer: five queries whatever
    the number of tickets (tickets with customer/store/version, tasks, visits, and the slots)."""
    now = now or timezone.now()
    day = day or timezone.localdate(now)
    tickets = list(my_open_tickets(user=user).select_related("customer", "store", "template_version", "template")
                   .order_by("created_at", "id")[:TODAY_LIMIT])
    ids = [t.pk for t in tickets]
    tasks: dict[int, Task] = {}
    for task in (Task.objects.filter(ticket_id__in=ids, status=TaskStatus.OPEN)
                 .only("ticket_id", "due_at", "node_name", "assignee_id").order_by("due_at", "id")):
        # The engineer's own task first, else the earliest deadline of the ticket.
        held = tasks.get(task.ticket_id)
        if held is None or (task.assignee_id == user.pk and held.assignee_id != user.pk):
            tasks[task.ticket_id] = task
    visits = visits_by_ticket(ticket_ids=ids, engineer=user)
    parts = slots.parts_to_bring(ticket_ids=ids)
    window = datetime.timedelta(minutes=getattr(settings, "FIELDSERVICE_WINDOW_MINUTES", 120))
    today, later = [], []
    for ticket in tickets:
        starts = appointment(ticket)
        site, _source = ticket_site_point(ticket)
        open_task = tasks.get(ticket.pk)
        due = open_task.due_at if open_task else None
        row = VisitRow(ticket=ticket, address=ticket_address_text(ticket), site=site, starts_at=starts,
                       ends_at=starts + window if starts else None, phone=ticket_phone(ticket), due_at=due,
                       sla_state=sla_state(due, now), node_name=open_task.node_name if open_task else "",
                       visit=visits.get(ticket.pk), parts=parts.get(ticket.pk, []))
        on_site_today = row.visit is not None and timezone.localdate(row.visit.checked_in_at) == day
        if (starts is not None and timezone.localdate(starts) == day) or on_site_today:
            today.append(row)
        else:
            later.append(row)
    far = datetime.datetime.max.replace(tzinfo=datetime.UTC)
    today.sort(key=lambda r: (r.starts_at or far, r.ticket.pk))
    later.sort(key=lambda r: (r.starts_at or far, r.ticket.pk))
    return today, later


def visit_ticket(*, user, pk):
    """The ticket of the visit page, if the user may see it, with what the page reads."""
    return (visible_tickets(user=user).select_related("customer", "store", "template_version", "template", "assignee")
            .filter(pk=pk).first())


def visit_task_node(*, ticket, user) -> str:
    """The name of the node the engineer's open task is at (photos are filed under it)."""
    task = (Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN)
            .filter(Q(assignee=user) | Q(backup=user) | Q(co_handlers=user)).order_by("id").first())
    return task.node_name if task else ""


@dataclass
class PlotPoint:
    x: float
    y: float
    visit: SiteVisit
    site_x: float | None = None
    site_y: float | None = None


def checkins_plot(visits, *, width=600, height=360, pad=24):
    """The check-ins (and their sites) scaled into an SVG box: a map-free picture of where the
    day's check-ins were, flagged ones stand out. Longitude is scaled by cos(latitude) so
    distances look right."""
    points = []
    for v in visits:
        if v.in_lat is not None:
            points.append((float(v.in_lat), float(v.in_lng)))
        if v.site_lat is not None:
            points.append((float(v.site_lat), float(v.site_lng)))
    if not points:
        return []
    lat0 = sum(p[0] for p in points) / len(points)
    k = math.cos(math.radians(lat0))
    xs = [p[1] * k for p in points]
    ys = [p[0] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-4)
    scale = min(width - 2 * pad, height - 2 * pad) / span
    x0, y1 = min(xs), max(ys)

    def place(lat, lng):
        return round(pad + (float(lng) * k - x0) * scale, 1), round(pad + (y1 - float(lat)) * scale, 1)

    plotted = []
    for v in visits:
        if v.in_lat is None and v.site_lat is None:
            continue
        point = PlotPoint(x=0, y=0, visit=v)
        if v.site_lat is not None:
            point.site_x, point.site_y = place(v.site_lat, v.site_lng)
        if v.in_lat is not None:
            point.x, point.y = place(v.in_lat, v.in_lng)
        else:
            point.x, point.y = point.site_x or 0, point.site_y or 0
        plotted.append(point)
    return plotted


def day_checkins(*, user, day, flagged_only=False):
    """The manager's day: check-ins on the tickets the manager may see, and their plot."""
    visits = site_checkins(day=day, flagged_only=flagged_only, tickets=visible_tickets(user=user))
    return visits, checkins_plot(visits)


def earnings_slot(*, user, day) -> tuple[Decimal, str | None] | None:
    return slots.earnings_today(user=user, day=day)
