"""Turning an event into outbox rows, inside the caller's transaction: who hears of it (the
caller's recipients, or the subject's defaults), on which channels (preferences, quiet hours,
opt-outs, reachable addresses), in which words (the tenant's template or the built-in one), and
one row per event × occurrence × recipient × channel, sent to Celery once the caller commits.

The subject an event is about (a ticket) is read only through the `SubjectKind` its app
registered (notifications.subjects): notifications imports no upper app."""

import contextlib
import datetime
import hashlib
import logging
import threading

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from scrm.config_cache import config_pinned, tenant_config
from scrm.db import insert_new
from scrm.models import StaffProfile

from ..defaults import default_template
from ..models import (
    CODED_CHANNELS,
    SERVICE_EVENTS,
    STAFF_CHANNELS,
    ChannelName,
    CustomerOptOut,
    DeliveryStatus,
    Event,
    Notification,
    NotificationTemplate,
    Preference,
    Priority,
)
from ..rendering import template_render, template_variables
from ..subjects import subject_kind
from . import sweep

logger = logging.getLogger(__name__)

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
STAFF_DEFAULT_CHANNELS = [ChannelName.WECOM]
CUSTOMER_CHANNEL_ORDER = [ChannelName.WECHAT, ChannelName.SMS, ChannelName.EMAIL]
KEY_LENGTH = 120


def _name(user):
    return (user.first_name or user.username) if user is not None else ""


def _variables(tenant, kind, subject, actor, context):
    variables = {"tenant_name": tenant.name, "actor_name": _name(actor)}
    if subject is not None:
        variables.update(kind.variables(subject))
    variables.update(context or {})
    # Only the sandbox's plain-text variables travel (and are stored for a later fallback).
    return {k: "" if v is None else str(v) for k, v in variables.items() if isinstance(k, str)}


def _language(tenant):
    return (tenant.settings or {}).get("language", settings.LANGUAGE_CODE)


class _Renderer:
    """Renders one event in one language for any channel: the tenant's saved template if there
    is one (all fetched in one query, cached per tenant until a template changes), else the
    built-in wording. A saved template that fails to render (saved before a rule existed, or by
    hand) falls back to the built-in wording and says so — an event never fails the transaction
    that caused it."""

    def __init__(self, tenant_id, event, language, variables):
        self.event, self.language, self.variables = event, language, variables
        self.saved = tenant_config(tenant_id).get(f"notification_templates:{event}:{language}", lambda: {
            t.channel: t
            for t in NotificationTemplate.objects.filter(tenant_id=tenant_id, event=event, language=language)
        })
        # The same wording serves every channel without a saved template of its own (the bell and
        # WeCom of every recipient): render each source once.
        self.texts: dict = {}

    def __call__(self, channel):
        """(subject, body, params, note) for a channel."""
        saved = self.saved.get(channel)
        key = saved.pk if saved is not None else None
        texts = self.texts.get(key)
        if texts is None:
            texts = self.texts[key] = self._texts(saved)
        subject, body, source, code, note = texts
        params = {}
        if code:
            params["template_code"] = code
        if channel in CODED_CHANNELS:
            # Providers fill their approved template from parameters: the variables the body uses,
            # in order (Tencent SMS is positional, Aliyun SMS and WeChat take them by name).
            params["values"] = {name: self.variables.get(name, "") for name in template_variables(source)}
        return (subject, body, params), note

    def _texts(self, saved):
        """(subject, body, body source, provider code, note) rendered from a saved template, or
        from the built-in wording when there is none or it fails."""
        with translation.override(self.language):
            if saved is not None:
                try:
                    return (template_render(saved.subject, self.variables), template_render(saved.body, self.variables),
                            saved.body, saved.sms_template_code, "")
                except ValidationError as exc:
                    logger.warning("template %s unusable, built-in wording used: %s", saved.pk, exc.messages)
                    note = _("The saved template could not be used (%(error)s); the built-in wording was sent.") % {
                        "error": "; ".join(exc.messages)}
            else:
                note = ""
            subject, body = default_template(self.event, self.language)
            return template_render(subject, self.variables), template_render(body, self.variables), body, "", note


def _quiet(preference, now):
    """When quiet hours end, if `now` falls inside them; None otherwise (or with none set)."""
    if preference is None or preference.quiet_start is None or preference.quiet_end is None:
        return None
    start, end = preference.quiet_start, preference.quiet_end
    if start == end:
        return None
    local = timezone.localtime(now)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_at = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_at <= local:
        end_at += datetime.timedelta(days=1)
    return end_at


def _staff_address(channel, user, profile):
    if channel == ChannelName.WECOM:
        return getattr(profile, "wecom_userid", "") or ""
    if channel == ChannelName.SMS:
        return getattr(profile, "phone", "") or ""
    if channel == ChannelName.EMAIL:
        return user.email or ""
    return ""


def _customer_address(channel, customer):
    return {
        ChannelName.WECHAT: customer.wechat_openid,
        ChannelName.SMS: customer.phone,
        ChannelName.EMAIL: customer.email,
    }.get(channel, "") or ""


def _labels(channels):
    return "、".join(str(ChannelName(c).label) for c in channels)


def _key(base, who, channel):
    key = f"{base}:{who}:{channel}"
    if len(key) > KEY_LENGTH:  # keep the key whole (its last part names the channel) by hashing the base
        key = f"{hashlib.sha256(base.encode()).hexdigest()[:40]}:{who}:{channel}"
    return key


_EMIT_ARGUMENTS = frozenset({"event", "ticket", "actor", "users", "customers", "context", "occurrence", "channels",
                             "urgent"})


def event_emit(*, tenant, event, ticket=None, actor=None, users=None, customers=None, context=None, occurrence="",
               channels=None, urgent=False):
    """Write the outbox rows an event causes, inside the caller's transaction, and send them to
    Celery once it commits. Staff get the in-app bell plus the channels of their preference
    (from its minimum priority up; held until quiet hours end unless urgent); customers get one
    message on the first channel they can be reached on (WeChat, SMS, email), and a `skipped`
    row saying why when there is none or they opted out of an optional message.

    One row per event × occurrence × recipient × channel: `occurrence` defaults to what the
    subject's kind says (a ticket's latest timeline event). `ticket` is the subject, read only
    through its registered `SubjectKind`. Returns the rows written (none if they all existed
    already).

    `channels` (a list of ChannelName values) overrides the staff's preferences: those channels
    are used whatever their minimum priority (an escalation names how it must arrive); `urgent`
    sends through quiet hours, as an urgent ticket does."""
    return event_emit_many(tenant=tenant, emits=[{
        "event": event, "ticket": ticket, "actor": actor, "users": users, "customers": customers,
        "context": context, "occurrence": occurrence, "channels": channels, "urgent": urgent}])


class _Emit:
    """One event about one subject, its recipients resolved (event_emit_many's unit of work)."""

    __slots__ = ("actor", "channels", "context", "customers", "event", "kind", "occurrence", "ticket", "urgent",
                 "users")

    def __init__(self, *, event, ticket=None, actor=None, users=None, customers=None, context=None, occurrence="",
                 channels=None, urgent=False):
        if event not in Event.values:
            raise ValueError(f"unknown event {event!r}")
        kind = subject_kind(ticket) if ticket is not None else None
        default_users, default_customers = (
            kind.recipients(ticket, event=event, actor=actor, context=context) if kind is not None else ([], []))
        self.users = default_users if users is None else list(users)
        self.customers = default_customers if customers is None else list(customers)
        self.event, self.ticket, self.kind, self.actor, self.context = event, ticket, kind, actor, context
        self.occurrence, self.channels, self.urgent = occurrence, channels, urgent


def event_emit_many(*, tenant, emits):
    """`event_emit` for many events of one tenant at once (an SLA sweep's escalations and
    reminders): each item of `emits` is a dict of event_emit's keyword arguments but the tenant.
    The rows are those the calls one by one would write — same recipients, preferences, quiet
    hours, opt-outs, wording and keys — but the staff profiles, the preferences and the opt-outs
    of all items are read in one query each and every row is written by one INSERT. Two items
    that would write the same key write it once. Returns the rows written."""
    items = []
    for emit in emits:
        unknown = set(emit) - _EMIT_ARGUMENTS
        if unknown:
            raise TypeError(f"event_emit_many: unknown arguments {sorted(unknown)}")
        item = _Emit(**emit)
        if item.users or item.customers:
            items.append(item)
    if not items:
        return []
    language = _language(tenant)
    now = timezone.now()
    user_ids = sorted({u.pk for item in items for u in item.users})
    profiles, preferences = {}, {}
    if user_ids:  # (an empty IN needs no query, but building one costs as much as a small read)
        profiles = {p.user_id: p for p in StaffProfile.objects.filter(user__in=user_ids)}
        events = sorted({item.event for item in items if item.users})
        preferences = {(p.user_id, p.event): p
                       for p in Preference.objects.filter(user__in=user_ids, event__in=events)}
    # Service messages (the ticket's own news) go whatever the customer opted out of: no read.
    optional = sorted({c.pk for item in items if item.event not in SERVICE_EVENTS for c in item.customers})
    opted_out = set(CustomerOptOut.objects.filter(customer__in=optional)
                    .values_list("customer_id", flat=True)) if optional else set()
    rows, keys = [], set()
    held = _held.rows if _held.tenant_id == tenant.pk else None
    if held is not None:
        keys = {row.idempotency_key for row in held}
    with config_pinned(tenant):  # the saved templates' stamp read once, not once per item
        for item in items:
            for row in _emit_rows(item, tenant=tenant, language=language, now=now, profiles=profiles,
                                  preferences=preferences, opted_out=opted_out):
                if row.idempotency_key not in keys:
                    keys.add(row.idempotency_key)
                    rows.append(row)
    if held is not None:
        held.extend(rows)
        return rows
    return _rows_save(rows, tenant_id=tenant.pk)


class _Held(threading.local):
    tenant_id: int | None = None
    rows: list | None = None


_held = _Held()


@contextlib.contextmanager
def emits_held(*, tenant):
    """Inside the block, `event_emit` / `event_emit_many` for this tenant work out their rows as
    they would (same recipients, wording, keys, at the moment of the call) and return them
    unsaved; the block's end writes them all, in the order of the calls, with one INSERT (an
    intake's "created" and its first node's "assigned"). An exception writes nothing. Inside an
    enclosing block, the outer one writes."""
    if _held.rows is not None:
        yield
        return
    _held.tenant_id, _held.rows = tenant.pk, []
    try:
        yield
        rows = _held.rows
    finally:
        _held.tenant_id, _held.rows = None, None
    if rows:
        _rows_save(rows, tenant_id=tenant.pk)


def _emit_rows(item, *, tenant, language, now, profiles, preferences, opted_out):
    """The outbox rows of one event about one subject (unsaved)."""
    event, ticket, kind = item.event, item.ticket, item.kind
    variables = _variables(tenant, kind, ticket, item.actor, item.context)
    render = _Renderer(tenant.pk, event, language, variables)
    priority = kind.priority(ticket) if kind is not None else Priority.NORMAL
    occurrence = item.occurrence
    if not occurrence and kind is not None:
        occurrence = kind.occurrence(ticket)
    base_key = f"{event}:{getattr(ticket, 'pk', '-')}:{occurrence}"
    rows = []

    def add(channel, *, user=None, customer=None, address="", note="", due=None, status=DeliveryStatus.PENDING):
        (subject, body, params), render_note = render(ChannelName.EMAIL if channel == ChannelName.NONE else channel)
        who = f"u{user.pk}" if user is not None else f"c{customer.pk}"
        if customer is not None or channel in CODED_CHANNELS:
            # Lets delivery re-render: for a customer's next channel, or once an SMS/WeChat code is saved.
            params["variables"] = variables
        if channel == ChannelName.INAPP:
            status = DeliveryStatus.SENT
        rows.append(Notification(
            tenant=tenant, event=event, channel=channel, idempotency_key=_key(base_key, who, channel),
            user=user, customer=customer, ticket=ticket, address=address[:255], subject=subject[:200],
            body=body[:4000], url=variables.get("tracking_url" if customer is not None else "ticket_url", ""),
            params=params, note=" ".join(n for n in (note, render_note) if n)[:300], status=status,
            sent_at=now if status == DeliveryStatus.SENT else None,
            next_attempt_at=(due or now) if status == DeliveryStatus.PENDING else None,
        ))

    for user in item.users:
        preference = preferences.get((user.pk, event))
        if item.channels is not None:
            wanted, below = list(item.channels), False
        else:
            wanted = preference.channels if preference is not None else STAFF_DEFAULT_CHANNELS
            below = preference is not None and (
                PRIORITY_RANK.get(priority, 1) < PRIORITY_RANK.get(preference.min_priority, 0))
        external, unreachable = [], []
        if not below:
            quiet_until = None if item.urgent or priority == Priority.URGENT else _quiet(preference, now)
            for channel in dict.fromkeys(wanted):
                if channel not in STAFF_CHANNELS:
                    continue
                address = _staff_address(channel, user, profiles.get(user.pk))
                if address:
                    external.append((channel, address, quiet_until))
                else:
                    unreachable.append(channel)
        # The bell always rings; it also records why a preferred channel was not used.
        add(ChannelName.INAPP, user=user, note=_("No address for %(channels)s, so in-app only.") % {
            "channels": _labels(unreachable)} if unreachable else "")
        for channel, address, quiet_until in external:
            note = _("Held for quiet hours until %(time)s.") % {
                "time": timezone.localtime(quiet_until).strftime("%H:%M")} if quiet_until else ""
            add(channel, user=user, address=address, note=note, due=quiet_until)

    for customer in item.customers:
        if customer.pk in opted_out:
            add(ChannelName.NONE, customer=customer, status=DeliveryStatus.SKIPPED,
                note=_("The customer opted out of optional messages."))
            continue
        skipped: list[str] = []
        for channel in CUSTOMER_CHANNEL_ORDER:
            address = _customer_address(channel, customer)
            if address:
                note = _("No %(channels)s, so %(channel)s.") % {
                    "channels": _labels(skipped), "channel": ChannelName(channel).label} if skipped else ""
                add(channel, customer=customer, address=address, note=note)
                break
            skipped.append(channel)
        else:
            add(ChannelName.NONE, customer=customer, status=DeliveryStatus.SKIPPED,
                note=_("No WeChat openid, phone or email: the customer cannot be reached."))
    return rows


def _rows_save(rows, *, tenant_id):
    """Insert the rows whose key is new (a concurrent writer of the same key wins quietly) and
    enqueue the ones due now once the transaction commits."""
    inserted = insert_new(rows, key="idempotency_key")
    if inserted is not None:
        rows = inserted
        if not rows:
            return []
    else:
        existing = set(Notification.objects.filter(idempotency_key__in=[r.idempotency_key for r in rows])
                       .values_list("idempotency_key", flat=True))
        rows = [r for r in rows if r.idempotency_key not in existing]
        if not rows:
            return []
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        ids = dict(Notification.objects.filter(idempotency_key__in=[r.idempotency_key for r in rows])
                   .values_list("idempotency_key", "pk"))
        for row in rows:
            row.pk = ids.get(row.idempotency_key)
    now = timezone.now()
    due = [(r.pk, tenant_id) for r in rows
           if r.pk and r.status == DeliveryStatus.PENDING and r.next_attempt_at <= now]
    if due:
        transaction.on_commit(lambda: sweep._enqueue(due), robust=True)
    return rows
