"""质检 (quality checks): per-tenant keyword rules over what staff wrote to customers, and the
flags a scan leaves on tickets for a manager to review."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import TenantOwned
from tickets.models import Ticket, TimelineEvent


class QualityRuleKind(models.TextChoices):
    FLAG = "flag", _("Phrases to flag")
    FORBIDDEN = "forbidden", _("Forbidden words")
    REQUIRED = "required", _("Required phrases")


class QualityRule(TenantOwned):
    """A keyword rule of the quality check. `phrases` is a list of plain phrases (matched
    literally, any one of them, on RE2 — so no rule can make a scan slow): a public staff comment
    containing one is flagged (flag, forbidden); a finished ticket whose public staff comments
    contain none is flagged (required, e.g. the closing 您好 / 感谢).

    Must hold: a name unique in the tenant; 1–30 phrases of 1–50 characters (the service checks)."""

    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=10, choices=QualityRuleKind.choices)
    phrases = models.JSONField(_("phrases"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("quality rule")
        verbose_name_plural = _("quality rules")
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="qualityrule_unique_name"),
            models.CheckConstraint(condition=Q(kind__in=QualityRuleKind.values), name="qualityrule_kind_valid"),
        ]

    def __str__(self):
        return self.name


class QualityFlag(TenantOwned):
    """One finding of the quality check: a ticket to review, the rule that fired, the comment
    (none for a missing required phrase) and the words found. Written once per rule and comment
    (or rule and ticket for required phrases), so scanning the same period twice adds nothing;
    `reviewed_by` / `reviewed_at` record that a manager looked at it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(QualityRule, on_delete=models.CASCADE, related_name="flags")
    event = models.ForeignKey(TimelineEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    excerpt = models.CharField(_("excerpt"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("quality flag")
        verbose_name_plural = _("quality flags")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "event"], condition=Q(event__isnull=False),
                                    name="qualityflag_once_per_event"),
            models.UniqueConstraint(fields=["rule", "ticket"], condition=Q(event__isnull=True),
                                    name="qualityflag_once_per_ticket"),
        ]
        indexes = [models.Index(fields=["tenant", "reviewed_at", "-created_at"], name="qualityflag_queue")]

    def __str__(self):
        return f"{self.ticket_id}: {self.rule_id}"


# --- daily roll-ups --------------------------------------------------------------------------

# Upper bounds (minutes) of the duration buckets the roll-ups count first responses and
# resolutions in; the last bucket is open. Percentiles (p50/p90) are read from these counts
# (dashboards.selectors.bucket_percentile), so the edges are dense where most tickets end.
DURATION_EDGES = (15, 30, 60, 120, 240, 480, 1440, 2880, 5760, 10080)
DURATION_BUCKET_COUNT = len(DURATION_EDGES) + 1
# The node × duration heatmap's buckets (minutes; the last is open).
NODE_EDGES = (30, 120, 480, 1440, 4320)
NODE_BUCKET_COUNT = len(NODE_EDGES) + 1
REPEAT_WINDOW_DAYS = 30  # a ticket is a repeat when the customer filed the same category this recently

HOUR_FIELDS = tuple(f"h{h:02d}" for h in range(24))
RESOLUTION_FIELDS = tuple(f"r{i:02d}" for i in range(DURATION_BUCKET_COUNT))
RESPONSE_FIELDS = tuple(f"f{i:02d}" for i in range(DURATION_BUCKET_COUNT))
NODE_FIELDS = tuple(f"b{i}" for i in range(NODE_BUCKET_COUNT))


class DailyTicketStats(TenantOwned):
    """One day's tickets of one combination of region, store, template, channel and handler:
    how many were filed (and in which hour, local time), how many finished (resolved, or closed
    by a workflow) and how many of those breached their SLA, how many got their first response,
    with the sums and bucket counts of those durations. Written only by
    dashboards.services.rollup_day (delete the tenant's day, insert it again), read by the
    dashboard and the 工作台 averages: never a row per ticket.

    A ticket counts on the day it was filed (created), the day it finished (resolved_*) and the
    day of its first response (responded_*), each under its region, store, template, channel and
    handler as they were when that day was rolled up. Several rows may share a key (after a
    handler is deleted): readers always sum."""

    day = models.DateField()
    region = models.ForeignKey("scrm.Region", on_delete=models.CASCADE, null=True, related_name="+")
    store = models.ForeignKey("scrm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    template = models.ForeignKey("tickets.TicketTemplate", on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=10)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    breached = models.PositiveIntegerField(default=0)
    resolution_seconds = models.BigIntegerField(default=0)
    responded = models.PositiveIntegerField(default=0)
    response_seconds = models.BigIntegerField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("daily ticket statistics")
        verbose_name_plural = _("daily ticket statistics")
        indexes = [
            models.Index(fields=["tenant", "day"], name="dailyticketstats_day"),
            # A regional manager's dashboard: only their stores' (and store-less regions') rows.
            models.Index(fields=["tenant", "store", "day"], name="dailyticketstats_store"),
            models.Index(fields=["tenant", "region", "day"], name="dailyticketstats_region"),
        ]

    def __str__(self):
        return f"{self.day} {self.store_id} {self.template_id} {self.source}"


class DailyNodeStats(TenantOwned):
    """One day's finished workflow tasks of one node, for one combination of the ticket's region,
    store, template and handler: how many, their total time (created → completed) and how many
    fell in each NODE_EDGES bucket — the node × duration heatmap. Written with DailyTicketStats."""

    day = models.DateField()
    region = models.ForeignKey("scrm.Region", on_delete=models.CASCADE, null=True, related_name="+")
    store = models.ForeignKey("scrm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    template = models.ForeignKey("tickets.TicketTemplate", on_delete=models.CASCADE, related_name="+")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    node_name = models.CharField(max_length=60)
    n = models.PositiveIntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("daily node statistics")
        verbose_name_plural = _("daily node statistics")
        indexes = [
            models.Index(fields=["tenant", "day"], name="dailynodestats_day"),
            models.Index(fields=["tenant", "store", "day"], name="dailynodestats_store"),
        ]

    def __str__(self):
        return f"{self.day} {self.node_name}"


class RepeatRequest(TenantOwned):
    """A repeat request (重复投诉): a ticket filed by a customer who had filed another ticket of the
    same category within REPEAT_WINDOW_DAYS before it. Written by the roll-up of the day the
    ticket was filed (with the ticket's region, store, template and handler, as DailyTicketStats),
    so the dashboard lists repeat customers without grouping the period's tickets."""

    day = models.DateField()
    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("scrm.Customer", on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey("tickets.Category", on_delete=models.CASCADE, related_name="+")
    region = models.ForeignKey("scrm.Region", on_delete=models.CASCADE, null=True, related_name="+")
    store = models.ForeignKey("scrm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    template = models.ForeignKey("tickets.TicketTemplate", on_delete=models.CASCADE, related_name="+")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        verbose_name = _("repeat request")
        verbose_name_plural = _("repeat requests")
        indexes = [models.Index(fields=["tenant", "day"], name="repeatrequest_day")]

    def __str__(self):
        return f"{self.day} {self.customer_id} {self.category_id}"


# The bucket and hour columns, one integer each (summed by the dashboard in SQL); added in a
# loop because forty-odd identical declarations would hide the model above.
for _name in HOUR_FIELDS + RESOLUTION_FIELDS + RESPONSE_FIELDS:
    DailyTicketStats.add_to_class(_name, models.PositiveIntegerField(default=0))
for _name in NODE_FIELDS:
    DailyNodeStats.add_to_class(_name, models.PositiveIntegerField(default=0))


from .export_models import ExportFormat, ExportJob, ExportState  # noqa: E402,F401  (the export's own module)

# The CSAT follow-up and the quality score have their own module; imported so Django registers them.
from .models_csat import RatingFollowUp, TicketQualityScore  # noqa: E402, F401
