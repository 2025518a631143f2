"""Workflow definitions (a draft graph per ticket template, published into immutable versions)
and the state of a running ticket: tokens that sit on nodes, and the tasks people act on."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from scrm.models import TenantOwned
from tickets.models import Ticket, TicketTemplate


class Workflow(TenantOwned):
    """The workflow of one ticket template: a draft graph managers edit, and the version new
    tickets start on. Graph format: see workflow/graph.py."""

    template = models.OneToOneField(TicketTemplate, on_delete=models.CASCADE, related_name="workflow",
                                    verbose_name=_("ticket template"))
    name = models.CharField(_("name"), max_length=60)
    draft = models.JSONField(_("draft graph"), default=dict, blank=True)
    current_version = models.ForeignKey("WorkflowVersion", on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="+", verbose_name=_("published version"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        ordering = ["name"]

    def __str__(self):
        return self.name


class WorkflowVersion(TenantOwned):
    """A published, frozen graph. Tickets in flight stay on the version they started with."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    graph = models.JSONField(_("graph"))
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")

    class Meta:
        verbose_name = _("workflow version")
        verbose_name_plural = _("workflow versions")
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflowversion_unique_number")]

    def __str__(self):
        return f"{self.workflow_id} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Workflow versions are immutable; publish a new version instead.")
        super().save(*args, **kwargs)


class Run(TenantOwned):
    """A ticket's journey through one workflow version (one per ticket)."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="workflow_run")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    is_finished = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("workflow run")
        verbose_name_plural = _("workflow runs")


class TokenState(models.TextChoices):
    ACTIVE = "active", _("Active")
    WAITING = "waiting", _("Waiting at join")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class Token(TenantOwned):
    """A marker on a node of a run. Parallel branches hold one token each; a join merges them."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tokens")
    node = models.CharField(max_length=40)
    state = models.CharField(max_length=10, choices=TokenState.choices, default=TokenState.ACTIVE)
    # The split that created this branch token (for the join to know whom to wait for).
    split_token = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="branches")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "state"], name="token_run_state")]


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class Task(TenantOwned):
    """One person's piece of work at a node: what they may do, by when, and what they did.
    A countersign node has one task per handler."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tasks")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="tasks")
    token = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="tasks")
    node = models.CharField(max_length=40)
    node_name = models.CharField(max_length=60)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+", verbose_name=_("handler"))
    backup = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+", verbose_name=_("backup handler"))
    co_handlers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    is_returned = models.BooleanField(default=False, help_text=_("Created because a later node returned the ticket."))
    due_at = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=16, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    completed_at = models.DateTimeField(null=True, blank=True)
    # The first time a holder acted on the task (the moments the SLA's first response counts: the
    # engine's handler_acted hook), and who: smart dispatch's "recent speed" is the median of
    # created → first action per person over the last days (workflow/dispatch_speed.py).
    first_action_at = models.DateTimeField(_("first action at"), null=True, blank=True)
    first_action_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+", db_index=False)
    # Why the handler rule picked the assignee: every candidate weighed, as
    # workflow.routing.HandlerChoice.reasons (JSON with a code, so pages render it in their language).
    handler_reasons = models.JSONField(_("why this handler"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "assignee", "status", "due_at"], name="task_my_queue"),
            models.Index(fields=["tenant", "ticket", "status"], name="task_ticket"),
            models.Index(fields=["due_at"], name="task_due_open", condition=Q(status="open")),
            # Smart dispatch's "recent speed": a person's tasks first acted on in the last days.
            models.Index(fields=["tenant", "first_action_by", "first_action_at"], name="task_first_action"),
        ]

    def __str__(self):
        return f"{self.ticket_id}:{self.node}"


class Workload(TenantOwned):
    """How many open tasks a person holds (as handler) in a tenant: a roll-up of Task kept by
    workflow/lifecycle.py, the one writer of tasks, so handler rules read a person's load in one
    indexed row instead of counting their open tasks on every ticket (a count that grows with
    the backlog). `workload_recount` says whether it matches the tasks; it must, always."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    open_tasks = models.IntegerField(default=0)
    # Smart dispatch's recent speed (workflow/dispatch_speed.py): the median minutes from a task's
    # creation to the person's first action on it over the last days, as of their last first action.
    speed_minutes = models.FloatField(null=True, blank=True)
    speed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name = _("workload")
        verbose_name_plural = _("workloads")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="workload_unique_user"),
            models.CheckConstraint(condition=Q(open_tasks__gte=0), name="workload_not_negative"),
        ]

    def __str__(self):
        return f"{self.user_id}: {self.open_tasks}"


# --- business calendars (SLA) -----------------------------------------------------------------

def _validate_time_zone(value):
    from .sla import CalendarError, zone_get

    try:
        zone_get(value)
    except CalendarError:
        raise ValidationError(_("“%(value)s” is not a known time zone (for example Asia/Shanghai)."),
                              code="time_zone", params={"value": value}) from None


def _validate_weekly_hours(value):
    from .sla import CalendarError, weekly_parse

    try:
        weekly_parse(value)
    except CalendarError as exc:
        raise calendar_error(exc) from None


def _validate_day_hours(value):
    from .sla import CalendarError, hours_parse

    if value is None:
        return
    try:
        hours_parse(value)
    except CalendarError as exc:
        raise calendar_error(exc) from None


def calendar_error(exc):
    """A workflow.sla.CalendarError as a ValidationError with a translated message."""
    params = {key: value for key, value in exc.params.items() if key != "weekday"}
    messages = {
        "clock": _("“%(value)s” is not a time: write it as HH:MM, from 00:00 to 24:00."),
        "hours": _("Working hours are a list of intervals, each a start and an end (at most %(limit)s a day)."),
        "interval_order": _("The interval %(start)s–%(end)s must end after it starts."),
        "interval_overlap": _("The intervals %(first)s and %(second)s overlap."),
        "weekly": _("Weekly hours are a mapping of weekday (mon … sun) to that day's intervals."),
        "weekday": _("“%(value)s” is not a weekday: use mon, tue, wed, thu, fri, sat or sun."),
        "time_zone": _("“%(value)s” is not a known time zone (for example Asia/Shanghai)."),
        "day_twice": _("%(date)s is listed both as a holiday and as a working day."),
    }
    message = messages.get(exc.code)
    if message is None:
        return ValidationError(str(exc), code=exc.code)
    weekday = exc.params.get("weekday")
    if weekday:
        label = WEEKDAY_LABELS[("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(weekday)]
        return ValidationError(_("%(day)s: %(message)s") % {"day": label, "message": message % params},
                               code=exc.code)
    return ValidationError(message, code=exc.code, params=params)


WEEKDAY_LABELS = [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")]


class BusinessCalendar(TenantOwned):
    """When a tenant works, for counting SLA time: a time zone, weekly hours and the dated
    exceptions in `days` (holidays, make-up working days). workflow.selectors turns it into a
    workflow.sla.Calendar, the value the deadline arithmetic runs on.

    Must hold: a name unique in the tenant; at most one default calendar per tenant (the one
    policies use unless they name another); `weekly_hours` as workflow.sla.weekly_parse reads it
    — {"mon": [["09:00", "12:00"], ["13:30", "18:00"]], …}, a weekday left out is a day off —
    and, unless 24×7, holding some working time (the services refuse a calendar without any);
    a 24×7 calendar counts every moment and ignores its weekly hours and days. `version` grows by
    one with every change of the calendar or of its days, so a deadline can say which version
    of the calendar it was counted in."""

    name = models.CharField(_("name"), max_length=60)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai",
                                 validators=[_validate_time_zone])
    is_24x7 = models.BooleanField(_("24×7"), default=False,
                                  help_text=_("Every moment counts: no working hours, no holidays."))
    weekly_hours = models.JSONField(_("weekly working hours"), default=dict, blank=True,
                                    validators=[_validate_weekly_hours])
    is_default = models.BooleanField(_("default calendar"), default=False)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="businesscalendar_unique_name"),
            models.UniqueConstraint(fields=["tenant"], condition=Q(is_default=True),
                                    name="businesscalendar_one_default"),
            models.CheckConstraint(condition=~Q(name=""), name="businesscalendar_name_set"),
            models.CheckConstraint(condition=~Q(time_zone=""), name="businesscalendar_time_zone_set"),
            models.CheckConstraint(condition=Q(version__gte=1), name="businesscalendar_version_positive"),
        ]

    def __str__(self):
        return self.name


class CalendarDayKind(models.TextChoices):
    HOLIDAY = "holiday", _("Holiday")
    WORKDAY = "workday", _("Make-up working day")


class CalendarDay(TenantOwned):
    """One dated exception of a business calendar: a holiday (no working time, whatever the
    weekday) or a make-up working day (调休: working time, whatever the weekday).

    Must hold: one row per calendar and date; a holiday has no hours; a make-up day has either
    `hours_like` (it keeps the weekly hours of that weekday, 0 = Monday) or its own `hours`
    (intervals as in BusinessCalendar.weekly_hours' days), never both, never neither."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="days",
                                 verbose_name=_("calendar"))
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=10, choices=CalendarDayKind.choices)
    name = models.CharField(_("name"), max_length=40, blank=True, help_text=_("For example 春节."))
    hours_like = models.PositiveSmallIntegerField(
        _("hours of"), null=True, blank=True, choices=list(enumerate(WEEKDAY_LABELS)),
        help_text=_("A make-up working day keeps the working hours of this weekday."))
    hours = models.JSONField(_("working hours"), null=True, blank=True, validators=[_validate_day_hours])

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="calendarday_unique_date"),
            models.CheckConstraint(condition=Q(kind__in=CalendarDayKind.values), name="calendarday_kind_valid"),
            models.CheckConstraint(
                condition=(Q(kind=CalendarDayKind.HOLIDAY, hours_like__isnull=True, hours__isnull=True)
                           | Q(kind=CalendarDayKind.WORKDAY, hours_like__isnull=False, hours__isnull=True)
                           | Q(kind=CalendarDayKind.WORKDAY, hours_like__isnull=True, hours__isnull=False)),
                name="calendarday_hours_match_kind"),
            models.CheckConstraint(condition=Q(hours_like__lte=6), name="calendarday_hours_like_weekday"),
        ]

    def __str__(self):
        return f"{self.date} {self.get_kind_display()} {self.name}".strip()


# --- smart dispatch (workflow/dispatch.py, dispatch_rule.py, pool.py) ------------------------

class DispatchRotation(TenantOwned):
    """Where a dispatch rule's round-robin stands: the person it last picked among equal
    scores, so the next tie goes to the one after them. One row per tenant and rule (`rule_key`:
    a digest of the rule's parameters and the template), written by the dispatch rule kind."""

    rule_key = models.CharField(max_length=40)
    last_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name = _("dispatch rotation")
        verbose_name_plural = _("dispatch rotations")
        constraints = [models.UniqueConstraint(fields=["tenant", "rule_key"], name="dispatchrotation_unique_rule")]

    def __str__(self):
        return f"{self.rule_key}: {self.last_user_id}"


class PoolReason(models.TextChoices):
    NO_HANDLER = "no_handler", _("Nobody eligible")
    BOUNCED = "bounced", _("Returned or transferred too often")
    FLAGGED = "flagged", _("Flagged by a handler")
    ESCALATED = "escalated", _("Escalated")


class PoolOutcome(models.TextChoices):
    ASSIGNED = "assigned", _("Assigned by hand")
    REDISPATCHED = "redispatched", _("Dispatched again")
    MOVED_ON = "moved_on", _("Moved on with a handler")
    CLOSED = "closed", _("Ticket ended")


class PoolEntry(TenantOwned):
    """A ticket in the exception pool (异常工单池): it found no eligible handler, bounced too
    often, was flagged by its handler or escalated, and waits for a manager of its region to
    assign or re-dispatch it. workflow/pool.py writes it (entering and leaving are timeline
    events). Must hold: at most one open entry (left_at empty) per ticket; a known reason; it
    leaves after it entered; an outcome exactly when it has left."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="pool_entries",
                               verbose_name=_("ticket"))
    task = models.ForeignKey(Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                             verbose_name=_("task"))
    region = models.ForeignKey("scrm.Region", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                               verbose_name=_("region"))
    reason = models.CharField(_("reason"), max_length=12, choices=PoolReason.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    entered_at = models.DateTimeField(_("entered at"), default=timezone.now)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    left_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    outcome = models.CharField(_("outcome"), max_length=12, choices=PoolOutcome.choices, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name = _("exception pool entry")
        verbose_name_plural = _("exception pool entries")
        ordering = ["entered_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket"], condition=Q(left_at__isnull=True),
                                    name="poolentry_one_open_per_ticket"),
            models.CheckConstraint(condition=Q(reason__in=PoolReason.values), name="poolentry_reason_valid"),
            models.CheckConstraint(condition=Q(left_at__isnull=True) | Q(left_at__gte=models.F("entered_at")),
                                   name="poolentry_leaves_after_entering"),
            models.CheckConstraint(condition=(Q(left_at__isnull=True, outcome="")
                                              | Q(left_at__isnull=False, outcome__in=PoolOutcome.values)),
                                   name="poolentry_outcome_when_left"),
        ]
        indexes = [models.Index(fields=["tenant", "region", "entered_at"], name="poolentry_open",
                                condition=Q(left_at__isnull=True))]

    def __str__(self):
        return f"{self.ticket_id}: {self.reason}"
# --- SLA policies and per-ticket deadlines --------------------------------------------------

class SlaPolicy(TenantOwned):
    """A service-level promise: which tickets it covers (`condition`, structured as in
    workflow/conditions.py; the active policy with the lowest `position` that matches wins), how
    many working minutes to the first response and to resolution, counted in `calendar` (the
    tenant's default calendar when empty, 24×7 when the tenant has none), when a deadline counts
    as "due soon" (`due_soon_percent` of its time left), per-node time limits overriding the
    nodes' own (`node_limits`: {node key: minutes}), and the escalation chain (`escalations`:
    a list of levels, see workflow/sla_policy.py LEVEL_KEYS).

    Must hold: a name unique in the tenant; at least one target; targets and limits positive;
    levels of the same basis in rising order (workflow.sla_policy.policy_check refuses the rest)."""

    name = models.CharField(_("name"), max_length=60)
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("order"), default=10,
                                                help_text=_("Lower first: the first matching policy applies."))
    condition = models.JSONField(_("applies to"), default=dict, blank=True)
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="policies", verbose_name=_("calendar"))
    response_minutes = models.PositiveIntegerField(_("first response within (working minutes)"), null=True,
                                                   blank=True)
    resolution_minutes = models.PositiveIntegerField(_("resolution within (working minutes)"), null=True,
                                                     blank=True)
    due_soon_percent = models.PositiveSmallIntegerField(_("due soon when time left is below (%)"), default=20)
    node_limits = models.JSONField(_("node time limits"), default=dict, blank=True)
    escalations = models.JSONField(_("escalation chain"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="slapolicy_unique_name"),
            models.CheckConstraint(condition=~Q(name=""), name="slapolicy_name_set"),
            models.CheckConstraint(condition=Q(response_minutes__isnull=False) | Q(resolution_minutes__isnull=False),
                                   name="slapolicy_has_target"),
            models.CheckConstraint(condition=Q(response_minutes__isnull=True) | Q(response_minutes__gt=0),
                                   name="slapolicy_response_positive"),
            models.CheckConstraint(condition=Q(resolution_minutes__isnull=True) | Q(resolution_minutes__gt=0),
                                   name="slapolicy_resolution_positive"),
            models.CheckConstraint(condition=Q(due_soon_percent__gte=1, due_soon_percent__lte=90),
                                   name="slapolicy_due_soon_share"),
        ]

    def __str__(self):
        return self.name


class SlaState(models.TextChoices):
    NONE = "", _("No SLA")
    ON_TRACK = "on_track", _("On track")
    DUE_SOON = "due_soon", _("Due soon")
    BREACHED = "breached", _("Breached")
    PAUSED = "paused", _("Paused")
    MET = "met", _("Met")


class TicketSla(TenantOwned):
    """One ticket's SLA clock: the policy it fell under, its first-response and resolution due
    times, when the first response came and when it was resolved, and the pause while it waits
    on the customer (the clock stops: on resume the due times move by the working time paused).
    Written only by workflow/sla_ticket.py (from the ticket's lifecycle hooks) and the sweep.

    Must hold: one row per ticket; `paused_at` set only while the ticket waits; `is_open` false
    once the ticket is closed or cancelled (its timers are then cancelled). Lists and dashboards
    read `response_due_at` / `resolution_due_at` / the breach flags (selectors.sla_badges,
    selectors.sla_at_risk)."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="sla")
    policy = models.ForeignKey(SlaPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                               verbose_name=_("SLA policy"))
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    due_soon_percent = models.PositiveSmallIntegerField(default=20)
    started_at = models.DateTimeField()
    response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    responded_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    response_breached = models.BooleanField(default=False)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolution_breached = models.BooleanField(default=False)
    paused_at = models.DateTimeField(_("paused since"), null=True, blank=True)
    paused_minutes = models.PositiveIntegerField(_("working minutes paused"), default=0)
    is_open = models.BooleanField(default=True)
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)

    class Meta:
        verbose_name = _("ticket SLA")
        verbose_name_plural = _("ticket SLAs")
        constraints = [
            models.CheckConstraint(condition=Q(is_open=True) | Q(paused_at__isnull=True),
                                   name="ticketsla_closed_not_paused"),
        ]
        indexes = [
            # "Who is about to breach" (lists, dashboards): open, running clocks by deadline.
            models.Index(fields=["tenant", "resolution_due_at"], name="ticketsla_open_resolution",
                         condition=Q(is_open=True, paused_at__isnull=True, resolved_at__isnull=True)),
            models.Index(fields=["tenant", "response_due_at"], name="ticketsla_open_response",
                         condition=Q(is_open=True, paused_at__isnull=True, responded_at__isnull=True)),
            models.Index(fields=["tenant", "resolution_breached"], name="ticketsla_breached",
                         condition=Q(resolution_breached=True) | Q(response_breached=True)),
        ]

    def __str__(self):
        return f"SLA {self.ticket_id}"


class TimerKind(models.TextChoices):
    RESPONSE_SOON = "response_soon", _("First response due soon")
    RESPONSE_DUE = "response_due", _("First response due")
    RESOLUTION_SOON = "resolution_soon", _("Resolution due soon")
    RESOLUTION_DUE = "resolution_due", _("Resolution due")
    ESCALATION = "escalation", _("Escalation level")
    NODE_SOON = "node_soon", _("Node due soon")
    NODE_DUE = "node_due", _("Node timeout")


class TimerOutcome(models.TextChoices):
    PENDING = "", _("Pending")
    FIRED = "fired", _("Fired")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")


class SlaTimer(TenantOwned):
    """One thing that must happen once at a moment: a due-soon reminder, a breach, an
    escalation level, a node's timeout. The sweep (workflow/sla_sweep.py) claims due rows with
    a conditional UPDATE (fired_at still empty), re-checks under the claim (ticket still open,
    not paused, task still held by `assignee`) and acts, all in one transaction — so a level
    fires exactly once, whatever the number of workers or a worker's death mid-sweep.

    Must hold: `due_at` empty only while the ticket is paused (then `left_minutes` keeps what
    was left, in the timer's clock); fired_at set exactly when the outcome is not pending;
    `level` ≥ 1 for escalations (1-based index into the policy's chain)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=16, choices=TimerKind.choices)
    level = models.PositiveSmallIntegerField(default=0)
    working = models.BooleanField(default=True, help_text=_("Counts working time (else wall-clock time)."))
    assignee_id_then = models.IntegerField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    left_minutes = models.PositiveIntegerField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=TimerOutcome.choices, default="", blank=True)

    class Meta:
        verbose_name = _("SLA timer")
        verbose_name_plural = _("SLA timers")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TimerKind.values), name="slatimer_kind_valid"),
            models.CheckConstraint(condition=(Q(fired_at__isnull=True, outcome="")
                                              | (Q(fired_at__isnull=False) & ~Q(outcome=""))),
                                   name="slatimer_fired_has_outcome"),
            models.CheckConstraint(condition=~Q(kind="escalation") | Q(level__gte=1),
                                   name="slatimer_escalation_level"),
        ]
        indexes = [
            # The sweep's one read: due, not yet fired (cost follows due rows, not open tickets).
            models.Index(fields=["due_at"], name="slatimer_due_unfired",
                         condition=Q(fired_at__isnull=True, due_at__isnull=False)),
            models.Index(fields=["tenant", "ticket"], name="slatimer_ticket_pending",
                         condition=Q(fired_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.kind}:{self.ticket_id}@{self.due_at}"
