"""Automation data: triggers (when a business event happens, if a condition holds, then an action)
and their firings, recurring ticket schedules and the runs they made, revisit plans (回访) and the
lead grade (线索分级) of a customer."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import Customer, Opportunity, Store, TenantOwned
from tickets.models import Ticket, TicketTemplate


class Event(models.TextChoices):
    """The named business events of scrm.events a trigger can wait for."""

    OPPORTUNITY_STAGE = "opportunity.stage_entered", _("An opportunity enters a stage")
    OPPORTUNITY_AMOUNT = "opportunity.amount_changed", _("An opportunity's amount changes")
    CUSTOMER_CREATED = "customer.created", _("A customer is created")
    CUSTOMER_TIER = "customer.tier_changed", _("A customer's tier changes")
    TICKET_CLOSED = "ticket.closed", _("A ticket is closed")
    TICKET_RATED = "ticket.rated", _("A ticket is rated")


class Action(models.TextChoices):
    CREATE_TICKET = "create_ticket", _("Create a ticket from a template")
    START_APPROVAL = "start_approval", _("Start an approval")
    NOTIFY = "notify", _("Notify someone")
    ADD_TAG = "add_tag", _("Add a tag to the customer")
    SET_TIER = "set_tier", _("Set the customer's tier")
    PLAN_REVISIT = "plan_revisit", _("Plan a revisit")
    SET_LEAD_GRADE = "set_lead_grade", _("Set the lead grade")


class Trigger(TenantOwned):
    """When `event` happens to a subject and `condition` (structured JSON, workflow.conditions)
    holds on it, run `action` with `params`. Fires at most once per subject and event (Firing's
    unique constraint). Edited through forms only (its saves refresh the tenant's cached
    configuration, so no QuerySet.update on it)."""

    name = models.CharField(_("name"), max_length=80)
    event = models.CharField(_("when"), max_length=40, choices=Event.choices)
    condition = models.JSONField(_("if"), default=dict, blank=True)
    action = models.CharField(_("then"), max_length=20, choices=Action.choices)
    params = models.JSONField(_("action settings"), default=dict, blank=True)
    is_active = models.BooleanField(_("on"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("trigger")
        verbose_name_plural = _("triggers")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="trigger_unique_name",
                                    violation_error_message=_("A trigger with this name already exists.")),
            models.CheckConstraint(condition=Q(event__in=Event.values), name="trigger_event_valid"),
            models.CheckConstraint(condition=Q(action__in=Action.values), name="trigger_action_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "event", "is_active"], name="trigger_tenant_event")]

    def __str__(self):
        return self.name


class FiringStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Failed, gave up")


class Decision(models.TextChoices):
    NONE = "", _("—")
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class Firing(TenantOwned):
    """One trigger fired for one subject on one event: written in the transaction of the change
    (pending), acted on after commit (done), retried with backoff while it fails (failed, then
    dead after the last attempt). Unique per trigger × event × subject, so a replayed event or
    an opportunity won twice fires once. An approval firing carries the decision of its ticket."""

    trigger = models.ForeignKey(Trigger, on_delete=models.PROTECT, related_name="firings", verbose_name=_("trigger"))
    event = models.CharField(_("event"), max_length=40, choices=Event.choices)
    subject_type = models.CharField(_("subject type"), max_length=20)
    subject_id = models.PositiveBigIntegerField(_("subject id"))
    subject_label = models.CharField(_("subject"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=FiringStatus.choices, default=FiringStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=500, blank=True)
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                               verbose_name=_("ticket"))
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, default="", blank=True)
    created_at = models.DateTimeField(_("fired at"), auto_now_add=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)

    class Meta:
        verbose_name = _("firing")
        verbose_name_plural = _("firings")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["trigger", "event", "subject_type", "subject_id"],
                                    name="firing_once_per_subject"),
            models.CheckConstraint(condition=Q(status__in=FiringStatus.values), name="firing_status_valid"),
            models.CheckConstraint(condition=Q(decision__in=Decision.values), name="firing_decision_valid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="firing_tenant_created"),
            models.Index(fields=["tenant", "status"], name="firing_tenant_status"),
            models.Index(fields=["tenant", "subject_type", "subject_id"], name="firing_tenant_subject"),
            models.Index(fields=["ticket"], name="firing_ticket"),
            # The retry sweep: failed rows whose next attempt is due.
            models.Index(fields=["next_attempt_at"], condition=Q(status="failed"), name="firing_retry_due"),
        ]


class Recurrence(models.TextChoices):
    DAILY = "daily", _("Every N days")
    WEEKLY = "weekly", _("Every N weeks, on a weekday")
    MONTHLY = "monthly", _("Every N months, on a day")
    YEARLY = "yearly", _("Every year, on a date")
    CRON = "cron", _("By a cron-like rule")


class TargetKind(models.TextChoices):
    """What a schedule makes one ticket for on each occurrence."""

    NONE = "none", _("One ticket")
    STORES = "stores", _("Each chosen store")
    CUSTOMERS = "customers", _("Each chosen customer")
    ASSETS = "assets", _("Each listed asset")


class Schedule(TenantOwned):
    """A recurring ticket plan (设备巡检 every month …): on each occurrence, one ticket from
    `template` per chosen store (or one in all when none is chosen). `next_run_at` is the timer:
    the beat sweep claims a due schedule by moving it forward with a conditional update, so each
    occurrence is created once however many workers tick; null once the plan has ended."""

    name = models.CharField(_("name"), max_length=80)
    template = models.ForeignKey(TicketTemplate, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("template"))
    title = models.CharField(_("ticket title"), max_length=120, blank=True)
    data = models.JSONField(_("field values"), default=dict, blank=True)
    recurrence = models.CharField(_("repeats"), max_length=10, choices=Recurrence.choices)
    every = models.PositiveSmallIntegerField(_("every"), default=1)
    weekday = models.PositiveSmallIntegerField(_("weekday"), null=True, blank=True)  # 0 = Monday
    month_day = models.PositiveSmallIntegerField(_("day of month"), null=True, blank=True)
    month = models.PositiveSmallIntegerField(_("month"), null=True, blank=True)
    cron = models.CharField(_("cron rule"), max_length=100, blank=True)
    at_time = models.TimeField(_("at"))
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    target_kind = models.CharField(_("one ticket for"), max_length=10, choices=TargetKind.choices,
                                   default=TargetKind.NONE)
    stores = models.ManyToManyField(Store, blank=True, related_name="+", verbose_name=_("stores"))
    customers = models.ManyToManyField(Customer, blank=True, related_name="+", verbose_name=_("customers"))
    mapping = models.JSONField(_("field mapping"), default=dict, blank=True)
    is_active = models.BooleanField(_("on"), default=True)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="schedule_unique_name",
                                    violation_error_message=_("A schedule with this name already exists.")),
            models.CheckConstraint(condition=Q(recurrence__in=Recurrence.values), name="schedule_recurrence_valid"),
            models.CheckConstraint(condition=Q(target_kind__in=TargetKind.values), name="schedule_target_kind_valid"),
            models.CheckConstraint(condition=~Q(recurrence="cron") | ~Q(cron=""), name="schedule_cron_has_rule"),
            models.CheckConstraint(condition=Q(every__gte=1, every__lte=366), name="schedule_every_range"),
            models.CheckConstraint(condition=Q(weekday__isnull=True) | Q(weekday__lte=6), name="schedule_weekday"),
            models.CheckConstraint(condition=Q(month_day__isnull=True) | Q(month_day__gte=1, month_day__lte=31),
                                   name="schedule_month_day"),
            models.CheckConstraint(condition=Q(month__isnull=True) | Q(month__gte=1, month__lte=12),
                                   name="schedule_month"),
            models.CheckConstraint(condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                                   name="schedule_ends_after_start"),
        ]
        indexes = [
            # The sweep across tenants: active plans by due time.
            models.Index(fields=["next_run_at"], condition=Q(is_active=True), name="schedule_due"),
            models.Index(fields=["tenant", "name"], name="schedule_tenant_name"),
        ]

    def __str__(self):
        return self.name


class ScheduleAsset(TenantOwned):
    """One line of a schedule's asset list (a store's kitchen equipment …): on each occurrence a
    ticket for it, its store and customer filled from the line."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="assets",
                                 verbose_name=_("schedule"))
    code = models.CharField(_("asset code"), max_length=40)
    name = models.CharField(_("asset name"), max_length=80)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              verbose_name=_("store"))
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                 verbose_name=_("customer"))

    class Meta:
        verbose_name = _("asset")
        verbose_name_plural = _("assets")
        ordering = ["code", "id"]
        constraints = [models.UniqueConstraint(fields=["schedule", "code"], name="scheduleasset_unique_code")]
        indexes = [models.Index(fields=["tenant", "schedule"], name="scheduleasset_tenant_schedule")]


class ScheduleRun(TenantOwned):
    """One occurrence of a schedule that was carried out, with the tickets it made. Unique per
    schedule and planned time: a second claim of the same occurrence cannot write twice. `error`
    says why its tickets could not be made (a template changed since the plan was saved …)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs", verbose_name=_("schedule"))
    planned_at = models.DateTimeField(_("planned for"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    tickets = models.ManyToManyField(Ticket, blank=True, related_name="+", verbose_name=_("tickets"))
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("schedule run")
        verbose_name_plural = _("schedule runs")
        ordering = ["-planned_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["schedule", "planned_at"], name="schedule_run_once")]
        indexes = [models.Index(fields=["tenant", "-planned_at"], name="schedulerun_tenant_planned")]


class ScheduleOccurrence(TenantOwned):
    """The claim of one target of one occurrence: its row is written (INSERT … ON CONFLICT DO
    NOTHING) before the ticket is made, in the ticket's transaction, so a second worker or a
    restarted tick finds it taken. `target` is "" (one ticket), "store:<pk>", "customer:<pk>"
    or "asset:<pk>"; `key` spells schedule, time and target in one unique column so that one
    statement can tell which claims it won."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="occurrences",
                                 verbose_name=_("schedule"))
    run = models.ForeignKey(ScheduleRun, on_delete=models.CASCADE, related_name="occurrences",
                            verbose_name=_("schedule run"))
    planned_at = models.DateTimeField(_("planned for"))
    target = models.CharField(_("target"), max_length=30, blank=True)
    key = models.CharField(max_length=80, unique=True)
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                               verbose_name=_("ticket"))

    class Meta:
        verbose_name = _("schedule occurrence")
        verbose_name_plural = _("schedule occurrences")
        ordering = ["-planned_at", "id"]
        constraints = [models.UniqueConstraint(fields=["schedule", "planned_at", "target"],
                                               name="schedule_occurrence_once_per_target")]
        indexes = [models.Index(fields=["tenant", "-planned_at"], name="scheduleocc_tenant_planned")]


class RevisitStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class RevisitOutcome(models.TextChoices):
    NONE = "", _("—")
    SATISFIED = "satisfied", _("Satisfied")
    NEUTRAL = "neutral", _("Neutral")
    UNHAPPY = "unhappy", _("Unhappy")
    UNREACHABLE = "unreachable", _("Could not reach")


class Revisit(TenantOwned):
    """A planned call or visit (回访) to a customer, due on a date: after a ticket closes, or as a
    lead grade's follow-up. Done once its outcome is recorded; an unhappy outcome creates a
    follow-up ticket (`followup`)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                                 verbose_name=_("customer"))
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                               verbose_name=_("ticket"))
    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                                    verbose_name=_("opportunity"))
    reason = models.CharField(_("reason"), max_length=120)
    due_on = models.DateField(_("due on"))
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", verbose_name=_("owner"))
    status = models.CharField(_("status"), max_length=10, choices=RevisitStatus.choices,
                              default=RevisitStatus.PLANNED)
    outcome = models.CharField(_("outcome"), max_length=12, choices=RevisitOutcome.choices, default="", blank=True)
    note = models.TextField(_("note"), max_length=1000, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+", verbose_name=_("done by"))
    followup = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                 verbose_name=_("follow-up ticket"))
    firing = models.OneToOneField(Firing, on_delete=models.SET_NULL, null=True, blank=True, related_name="revisit")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("revisit")
        verbose_name_plural = _("revisits")
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RevisitStatus.values), name="revisit_status_valid"),
            models.CheckConstraint(condition=Q(outcome__in=RevisitOutcome.values), name="revisit_outcome_valid"),
            models.CheckConstraint(condition=~Q(status="done") | ~Q(outcome=""), name="revisit_done_has_outcome"),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "due_on"], name="revisit_tenant_status_due"),
            models.Index(fields=["tenant", "customer"], name="revisit_tenant_customer"),
        ]


class LeadGrade(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    C = "C", "C"
    D = "D", "D"


class CustomerGrade(TenantOwned):
    """A customer's lead grade (线索分级 A–D), set by a grading trigger; one row per customer."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="lead_grade",
                                    verbose_name=_("customer"))
    grade = models.CharField(_("lead grade"), max_length=1, choices=LeadGrade.choices)
    reason = models.CharField(_("reason"), max_length=120, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("lead grade")
        verbose_name_plural = _("lead grades")
        constraints = [models.CheckConstraint(condition=Q(grade__in=LeadGrade.values), name="customergrade_valid")]
        indexes = [models.Index(fields=["tenant", "grade"], name="customergrade_tenant_grade")]


class LeadRule(TenantOwned):
    """The rule of one lead tier (线索分级): a customer is in the best tier (A before D) whose every
    given criterion holds — the total of its open and won opportunities at least `min_amount`,
    its source one of `sources`, its last contact within `contact_within_days` (or, with
    `contact_older_than_days`, longer ago than that). The tier's follow-up plan: a revisit
    `followup_days` after the customer enters the tier, for `followup_reason`."""

    grade = models.CharField(_("lead grade"), max_length=1, choices=LeadGrade.choices)
    min_amount = models.DecimalField(_("opportunities at least (yuan)"), max_digits=14, decimal_places=2,
                                     null=True, blank=True)
    sources = models.JSONField(_("sources"), default=list, blank=True)
    contact_within_days = models.PositiveSmallIntegerField(_("last contact within (days)"), null=True, blank=True)
    contact_older_than_days = models.PositiveSmallIntegerField(_("no contact for more than (days)"), null=True,
                                                               blank=True)
    followup_days = models.PositiveSmallIntegerField(_("revisit after (days)"), null=True, blank=True)
    followup_reason = models.CharField(_("follow-up"), max_length=120, blank=True)
    is_active = models.BooleanField(_("on"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("lead tier rule")
        verbose_name_plural = _("lead tier rules")
        ordering = ["grade"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "grade"], name="leadrule_one_per_grade"),
            models.CheckConstraint(condition=Q(grade__in=LeadGrade.values), name="leadrule_grade_valid"),
            models.CheckConstraint(condition=Q(min_amount__isnull=True) | Q(min_amount__gte=0),
                                   name="leadrule_amount_not_negative"),
            models.CheckConstraint(condition=Q(followup_days__isnull=True) | Q(followup_days__lte=365),
                                   name="leadrule_followup_range"),
        ]
