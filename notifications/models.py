"""Notifications: per-tenant message templates, people's preferences, customers' opt-outs, and
the outbox — one row per event × recipient × channel, written in the transaction that caused it
and delivered by Celery with retries."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import Customer, TenantOwned


class Event(models.TextChoices):
    TICKET_CREATED = "ticket_created", _("Ticket created")
    TICKET_ASSIGNED = "ticket_assigned", _("Ticket assigned")
    NODE_DUE_SOON = "node_due_soon", _("Node due soon")
    TICKET_ESCALATED = "ticket_escalated", _("Ticket escalated")
    TICKET_RETURNED = "ticket_returned", _("Ticket returned")
    TICKET_COMMENTED = "ticket_commented", _("Ticket commented")
    ENGINEER_ON_THE_WAY = "engineer_on_the_way", _("Engineer on the way")
    TICKET_RESOLVED = "ticket_resolved", _("Ticket resolved")
    SATISFACTION_REQUEST = "satisfaction_request", _("Satisfaction request")
    PARTS_LOW_STOCK = "parts_low_stock", _("Parts low on stock")
    SETTLEMENT_READY = "settlement_ready", _("Settlement ready")
    AUTOMATION_NOTICE = "automation_notice", _("Automation notice")
    LOW_RATING = "low_rating", _("Low satisfaction rating")
    QUALITY_REPORT = "quality_report", _("Weekly quality report")
    SLA_BREACH_DIGEST = "sla_breach_digest", _("SLA breach digest")


# Events a customer always receives about their own request, whatever they opted out of.
SERVICE_EVENTS = frozenset({
    Event.TICKET_CREATED, Event.ENGINEER_ON_THE_WAY, Event.TICKET_RESOLVED, Event.TICKET_COMMENTED,
})


# Events only customers receive (staff pick channels for the others on their preferences page).
CUSTOMER_ONLY_EVENTS = frozenset({Event.ENGINEER_ON_THE_WAY, Event.SATISFACTION_REQUEST})
STAFF_EVENTS = [e for e in Event if e not in CUSTOMER_ONLY_EVENTS]


class ChannelName(models.TextChoices):
    INAPP = "inapp", _("In-app")
    WECOM = "wecom", _("WeChat Work")
    WECHAT = "wechat", _("WeChat official account")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    # A row that records why nobody could be reached (no address, opted out); never delivered.
    NONE = "none", _("No channel")


# Channels a staff member may choose beside the in-app bell, and the channels a template exists for.
STAFF_CHANNELS = [ChannelName.WECOM, ChannelName.SMS, ChannelName.EMAIL]
TEMPLATE_CHANNELS = [ChannelName.INAPP, ChannelName.WECOM, ChannelName.WECHAT, ChannelName.SMS, ChannelName.EMAIL]
# Channels whose providers send only pre-approved templates: a saved template needs their code.
CODED_CHANNELS = frozenset({ChannelName.SMS, ChannelName.WECHAT})


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class NotificationTemplate(TenantOwned):
    """A tenant's wording for one event on one channel in one language. Rendered with a fixed
    set of plain-text variables only; the built-in defaults apply where none is saved."""

    event = models.CharField(_("event"), max_length=24, choices=Event.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=[(c.value, c.label) for c in TEMPLATE_CHANNELS])
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("body"), max_length=4000)
    sms_template_code = models.CharField(_("SMS / WeChat template code"), max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("notification template")
        verbose_name_plural = _("notification templates")
        ordering = ["event", "channel", "language"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event", "channel", "language"], name="ntemplate_unique"),
        ]

    def __str__(self):
        return f"{self.get_event_display()} · {self.get_channel_display()} · {self.language}"


class Preference(TenantOwned):
    """How one staff member wants one event: which channels (beside the in-app bell, which they
    always get), from which ticket priority up, and quiet hours (non-urgent messages are held
    until they end). Without a row a person gets WeCom. Quiet hours are both set or both empty."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(_("event"), max_length=24, choices=Event.choices)
    channels = models.JSONField(_("channels"), default=list)
    min_priority = models.CharField(_("minimum priority"), max_length=10, default=Priority.LOW,
                                    choices=Priority.choices)
    quiet_start = models.TimeField(_("quiet from"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet until"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "event"], name="preference_unique"),
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="preference_quiet_both_or_neither",
            ),
            models.CheckConstraint(condition=Q(min_priority__in=Priority.values), name="preference_priority_known"),
        ]

    def __str__(self):
        return f"{self.user_id} {self.event}"


class CustomerOptOut(TenantOwned):
    """A customer who declined optional messages (satisfaction surveys and the like)."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="notification_opt_out")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("customer opt-out")
        verbose_name_plural = _("customer opt-outs")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    WAITING = "waiting", _("Waiting for channel set-up")
    SKIPPED = "skipped", _("Skipped")
    DEAD = "dead", _("Dead-lettered")


class Notification(TenantOwned):
    """The outbox: one message to one recipient on one channel. `idempotency_key` (event ×
    occurrence × recipient × channel) makes a second write of the same message a no-op, and the
    claim on `status` (pending → sending, with a lease in `next_attempt_at`) makes a second
    delivery attempt of the same row a no-op. In-app rows are born sent; `none` rows are born
    skipped and say in `note` why nobody could be reached."""

    event = models.CharField(max_length=24, choices=Event.choices)
    channel = models.CharField(max_length=8, choices=ChannelName.choices)
    idempotency_key = models.CharField(max_length=120)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, null=True, blank=True,
                               related_name="notifications")
    address = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(max_length=4000)
    url = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    provider_message_id = models.CharField(max_length=128, blank=True)
    note = models.CharField(max_length=300, blank=True, help_text=_("Why this channel (fallbacks, quiet hours)."))
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="notification_unique_key"),
        ]
        indexes = [
            # The sweep's index: only rows still owed a delivery attempt.
            models.Index(fields=["next_attempt_at"], name="notification_due",
                         condition=Q(status__in=["pending", "sending"])),
            models.Index(fields=["tenant", "user", "channel", "read_at"], name="notification_inbox"),
            models.Index(fields=["tenant", "ticket"], name="notification_ticket"),
            models.Index(fields=["tenant", "status"], name="notification_tenant_status"),
        ]

    def __str__(self):
        return f"{self.event} → {self.channel} ({self.status})"
