"""Tickets and what builds them: categories, templates (a draft of fields, published into
immutable versions), the ticket itself with its lifecycle, the append-only timeline,
attachments, and the intake bookkeeping (number sequences, API keys, idempotency, inbound
message de-duplication, classification rules)."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import FSMField, transition
from django_scopes import ScopedManager

from scrm.models import Customer, Opportunity, Region, Store, Tag, TenantOwned


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class Source(models.TextChoices):
    WEB = "web", _("Web form")
    STAFF = "staff", _("Staff")
    PHONE = "phone", _("Phone")
    API = "api", _("API")
    WECOM = "wecom", _("WeChat Work")
    WECHAT = "wechat", _("WeChat official account")
    EMAIL = "email", _("Email")


class Category(TenantOwned):
    """A kind of request (咨询, 投诉, 预定, 售后, 安装, 维修, 巡检 …), as data per tenant."""

    name = models.CharField(_("name"), max_length=30)
    code = models.SlugField(_("code"), max_length=30)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="category_unique_code"),
            models.UniqueConstraint(fields=["tenant", "name"], name="category_unique_name"),
        ]

    def __str__(self):
        return self.name


class TicketTemplate(TenantOwned):
    """A 工单模板: the draft field list managers edit, and the published version new tickets use.
    The number prefix makes numbers like WX-20261123-0001."""

    name = models.CharField(_("name"), max_length=60)
    slug = models.SlugField(_("slug"), max_length=50)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="templates", verbose_name=_("category")
    )
    description = models.TextField(_("description"), blank=True, max_length=1000)
    default_priority = models.CharField(
        _("default priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    number_prefix = models.CharField(
        _("number prefix"), max_length=8, default="GD",
        help_text=_("Upper-case letters, e.g. WX gives WX-20261123-0001."),
    )
    is_public = models.BooleanField(_("public web form"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    site_photos_public = models.BooleanField(
        _("site photos shown to the customer"), default=True,
        help_text=_("Photos the engineer takes on site appear on the customer's tracking page."))
    draft_fields = models.JSONField(_("draft fields"), default=list, blank=True)
    current_version = models.ForeignKey(
        "TemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("published version"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("ticket template")
        verbose_name_plural = _("ticket templates")
        ordering = ["category__order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="template_unique_slug"),
            models.CheckConstraint(condition=Q(number_prefix__regex=r"^[A-Z]{1,8}$"), name="template_prefix_upper"),
        ]

    def __str__(self):
        return self.name


class TemplateVersion(TenantOwned):
    """A published, frozen copy of a template's fields. Never changed once written: a ticket
    keeps the version it was created with, so later edits cannot reinterpret its data."""

    template = models.ForeignKey(TicketTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    fields = models.JSONField(_("fields"))
    published_at = models.DateTimeField(_("published at"), auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("template version")
        verbose_name_plural = _("template versions")
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="templateversion_unique_number"),
        ]

    def __str__(self):
        return f"{self.template_id} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Template versions are immutable; publish a new version instead.")
        super().save(*args, **kwargs)


class Status(models.TextChoices):
    NEW = "new", pgettext_lazy("ticket status", "New")
    IN_PROGRESS = "in_progress", pgettext_lazy("ticket status", "In progress")
    WAITING = "waiting", pgettext_lazy("ticket status", "Waiting on customer")
    RESOLVED = "resolved", pgettext_lazy("ticket status", "Resolved")
    CLOSED = "closed", pgettext_lazy("ticket status", "Closed")
    CANCELLED = "cancelled", pgettext_lazy("ticket status", "Cancelled")


OPEN_STATUSES = (Status.NEW, Status.IN_PROGRESS, Status.WAITING)


def tracking_token_new(tenant_id):
    """A secret for the public tracking link. It starts with the tenant id (hex) so the public
    page can open the right tenant scope before looking the ticket up by the whole token."""
    return f"{tenant_id:x}-{secrets.token_urlsafe(24)}"


class Ticket(TenantOwned):
    """A 工单. Its custom data lives in `data`, validated against its template version's
    fields; `raw_payload` keeps what the channel sent. The status moves only through the
    transitions below, called by services (the ticket services, later the workflow engine)."""

    number = models.CharField(_("number"), max_length=32)
    template = models.ForeignKey(TicketTemplate, on_delete=models.PROTECT, related_name="tickets")
    template_version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="tickets")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="tickets")
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True, max_length=10000)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = FSMField(_("status"), max_length=12, choices=Status.choices, default=Status.NEW, protected=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets", verbose_name=_("customer")
    )
    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets",
        verbose_name=_("opportunity"),
    )
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets", verbose_name=_("region")
    )
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets", verbose_name=_("store")
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("assignee"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets", verbose_name=_("tags"))
    data = models.JSONField(_("data"), default=dict, blank=True)
    raw_payload = models.JSONField(_("raw payload"), default=dict, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children", verbose_name=_("parent")
    )
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged", verbose_name=_("merged into")
    )
    tracking_token = models.CharField(max_length=48, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="ticket_unique_number"),
            models.CheckConstraint(condition=Q(status__in=Status.values), name="ticket_status_valid"),
            models.CheckConstraint(condition=Q(priority__in=Priority.values), name="ticket_priority_valid"),
            models.CheckConstraint(condition=~Q(merged_into=models.F("pk")), name="ticket_not_merged_into_itself"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="ticket_tenant_created"),
            # With -id the status filter's page is read in index order (no sort) and its capped count
            # can be an index-only scan. The title search's trigram index (PostgreSQL only) is in
            # migration 0002, outside Meta: Django has no portable way to declare it.
            models.Index(fields=["tenant", "status", "-created_at", "-id"], name="ticket_tenant_status"),
            models.Index(fields=["tenant", "assignee", "status"], name="ticket_tenant_assignee"),
            models.Index(fields=["tenant", "region", "-created_at"], name="ticket_tenant_region"),
            models.Index(fields=["tenant", "store", "-created_at"], name="ticket_tenant_store"),
            models.Index(fields=["tenant", "customer", "-created_at"], name="ticket_tenant_customer"),
            models.Index(fields=["tenant", "template", "-created_at"], name="ticket_tenant_template"),
            models.Index(fields=["tenant", "category", "-created_at"], name="ticket_tenant_category"),
            # The 工作台's "resolved today" and the dashboard's resolution times read by this.
            models.Index(fields=["tenant", "resolved_at"], name="ticket_tenant_resolved"),
            models.Index(fields=["tenant", "closed_at"], name="ticket_tenant_closed"),
        ]

    def __str__(self):
        return f"{self.number} {self.title}"

    @property
    def is_open(self):
        return self.status in OPEN_STATUSES

    # Transitions: only the services call these (and they write the timeline event).
    @transition(field=status, source=[Status.NEW, Status.WAITING], target=Status.IN_PROGRESS)
    def start(self):
        pass

    @transition(field=status, source=Status.IN_PROGRESS, target=Status.WAITING)
    def wait_for_customer(self):
        pass

    @transition(field=status, source=[Status.NEW, Status.IN_PROGRESS, Status.WAITING], target=Status.RESOLVED)
    def resolve(self):
        pass

    @transition(field=status, source=Status.RESOLVED, target=Status.IN_PROGRESS)
    def reopen(self):
        pass

    @transition(field=status, source=[Status.RESOLVED, Status.NEW, Status.IN_PROGRESS, Status.WAITING],
                target=Status.CLOSED)
    def close(self):
        pass

    @transition(field=status, source=[Status.NEW, Status.IN_PROGRESS, Status.WAITING], target=Status.CANCELLED)
    def cancel(self):
        pass


class TicketNumberSequence(TenantOwned):
    """The last number handed out per tenant, prefix and day. Incremented under a row lock in
    the creating transaction, so numbers are unique and gap-free even with concurrent intake."""

    prefix = models.CharField(max_length=8)
    day = models.DateField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "prefix", "day"], name="ticketsequence_unique_day"),
        ]


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are append-only")


class EventKind(models.TextChoices):
    CREATED = "created", _("Created")
    CHANGED = "changed", _("Changed")
    STATUS = "status", _("Status changed")
    ASSIGNED = "assigned", _("Assigned")
    COMMENT = "comment", _("Comment")
    ATTACHMENT = "attachment", _("Attachment")
    SPLIT = "split", _("Split")
    MERGED = "merged", _("Merged")
    NOTIFICATION = "notification", _("Notification")
    WORKFLOW = "workflow", _("Workflow")
    RATING = "rating", _("Satisfaction rating")


class TimelineEvent(TenantOwned):
    """One entry on a ticket's 操作记录墙: who did what when, and each field's old → new value
    in `changes`. Append-only: corrections are new events; nothing updates or deletes one."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=80, blank=True)
    is_public = models.BooleanField(default=False)
    # What happened, as a code (tickets/timeline.py) and its parameters, rendered in the
    # reader's language; `message` is only what a person typed (a comment, a note, a reason).
    code = models.CharField(max_length=40, blank=True)
    params = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True, max_length=10000)
    changes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(_manager_class=models.Manager.from_queryset(AppendOnlyQuerySet), tenant="tenant")

    class Meta:
        verbose_name = _("timeline event")
        verbose_name_plural = _("timeline events")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "ticket", "created_at"], name="event_tenant_ticket")]

    def __str__(self):
        return f"{self.ticket_id} {self.kind}"

    @property
    def text(self):
        """The entry in the active language (its code's text, then what a person typed)."""
        from .timeline import event_text

        return event_text(code=self.code, params=self.params, message=self.message)

    @property
    def public_text(self):
        """What the customer reads of this entry on the tracking page, or None (staff only)."""
        from .timeline import event_public_text

        return event_public_text(code=self.code, params=self.params, message=self.message)

    @property
    def change_rows(self):
        from .timeline import change_rows

        return change_rows(self.changes)

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("Timeline events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Timeline events are append-only")


def attachment_path(instance, filename):
    return f"t{instance.tenant_id}/tickets/{secrets.token_hex(8)}/{filename}"


class Attachment(TenantOwned):
    """A file on a ticket: from the form (a field's value), a comment, an email or WeCom."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    event = models.ForeignKey(
        TimelineEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="attachments"
    )
    field_key = models.CharField(max_length=40, blank=True)
    file = models.FileField(upload_to=attachment_path, max_length=255)
    name = models.CharField(max_length=200)
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=100)
    is_public = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "ticket"], name="attachment_tenant_ticket")]

    def __str__(self):
        return self.name


class ClassificationRule(TenantOwned):
    """A keyword rule applied at intake: if the text contains any (or all) of the keywords,
    set the template/category/priority and add tags. Lower `order` wins; the first match applies."""

    class Match(models.TextChoices):
        ANY = "any", _("Any keyword")
        ALL = "all", _("All keywords")

    name = models.CharField(_("name"), max_length=60)
    keywords = models.JSONField(_("keywords"), default=list)
    match = models.CharField(_("match"), max_length=3, choices=Match.choices, default=Match.ANY)
    set_template = models.ForeignKey(
        TicketTemplate, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        verbose_name=_("set template"),
    )
    set_category = models.ForeignKey(
        Category, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("set category")
    )
    set_priority = models.CharField(_("set priority"), max_length=10, choices=Priority.choices, blank=True)
    add_tags = models.ManyToManyField(Tag, blank=True, related_name="+", verbose_name=_("add tags"))
    order = models.PositiveSmallIntegerField(_("order"), default=100)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("classification rule")
        verbose_name_plural = _("classification rules")
        ordering = ["order", "id"]

    def __str__(self):
        return self.name


class ApiKey(TenantOwned):
    """A tenant's key for the REST API. Only a SHA-256 of the secret is stored; the prefix
    finds the row without scanning."""

    name = models.CharField(_("name"), max_length=60)
    prefix = models.CharField(max_length=12, unique=True)
    hashed_key = models.CharField(max_length=64)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(TenantOwned):
    """The answer given to a request with an Idempotency-Key, so a retry gets the same ticket."""

    key = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    # Written before the ticket (the unique key is the lock), filled in the same transaction.
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_unique_key")]


class InboundMessage(TenantOwned):
    """A message a channel delivered (WeCom MsgId, WeChat MsgId, email Message-ID), kept so the
    same message delivered twice makes one ticket or comment."""

    channel = models.CharField(max_length=10, choices=Source.choices)
    external_id = models.CharField(max_length=255)
    sender = models.CharField(max_length=255, blank=True)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # An image message's picture, fetched from the platform once the message is taken in; set
    # once, so a redelivered fetch task attaches nothing twice. The error says why it never came.
    media_attachment = models.OneToOneField(
        Attachment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    media_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "channel", "external_id"], name="inbound_unique_message"),
        ]


# Site visits have their own module (models.py is long enough); imported here so Django registers them.
from .models_visits import SiteVisit, Verdict  # noqa: E402, F401


class SatisfactionRating(TenantOwned):
    """A customer's 满意度评价 (CSAT) of a resolved ticket: a score of 1–5 and an optional comment,
    given once through the tracking link. `handler` and `store` are copied from the ticket when it
    is rated, so the results by person and store stay what they were when the customer judged them.

    Must hold: one rating per ticket (the link cannot be reused); a score from 1 to 5."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="rating", verbose_name=_("ticket"))
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True, max_length=1000)
    handler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+", verbose_name=_("handler"))
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                              verbose_name=_("store"))
    region = models.ForeignKey(Region, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                               verbose_name=_("region"))
    created_at = models.DateTimeField(_("rated at"), auto_now_add=True)

    class Meta:
        verbose_name = _("satisfaction rating")
        verbose_name_plural = _("satisfaction ratings")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5), name="rating_score_1_to_5"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="rating_tenant_created")]

    def __str__(self):
        return f"{self.ticket_id}: {self.score}"
