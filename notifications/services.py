"""Notification writes: turning an event into outbox rows (in the caller's transaction),
delivering one row with retries and backoff, the sweep that finds owed deliveries, the admin's
retry of dead-lettered rows, and the managers' and staff's settings (templates, preferences).

Delivery is at most once per row: a conditional update claims it (pending → sending with a
lease), the network call runs outside any transaction, and the outcome is written only by the
claim that holds it (matched on `attempts`)."""

import datetime
import hashlib
import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError

from scrm.config_cache import tenant_config
from scrm.db import insert_new
from scrm.models import Membership, StaffProfile

from .channels import (
    DeliveryError,
    Message,
    MissingAddress,
    MissingCredentials,
    Recipient,
    channel_for,
)
from .defaults import default_template
from .models import (
    CODED_CHANNELS,
    SERVICE_EVENTS,
    STAFF_CHANNELS,
    STAFF_EVENTS,
    TEMPLATE_CHANNELS,
    ChannelName,
    CustomerOptOut,
    DeliveryStatus,
    Event,
    Notification,
    NotificationTemplate,
    Preference,
    Priority,
)
from .rendering import template_check, template_render, template_variables

logger = logging.getLogger(__name__)

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
STAFF_DEFAULT_CHANNELS = [ChannelName.WECOM]
CUSTOMER_CHANNEL_ORDER = [ChannelName.WECHAT, ChannelName.SMS, ChannelName.EMAIL]
LEASE = datetime.timedelta(minutes=5)
KEY_LENGTH = 120


def _max_attempts():
    return getattr(settings, "NOTIFICATION_MAX_ATTEMPTS", 5)


def _backoff(attempts):
    base = getattr(settings, "NOTIFICATION_BACKOFF_SECONDS", 30)
    return datetime.timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 6 * 3600))


# --- building outbox rows ---------------------------------------------------------------

def _name(user):
    return (user.first_name or user.username) if user is not None else ""


def _variables(tenant, ticket, actor, context):
    site = getattr(settings, "SITE_URL", "").rstrip("/")
    variables = {"tenant_name": tenant.name, "actor_name": _name(actor)}
    if ticket is not None:
        variables.update({
            "ticket_number": ticket.number,
            "ticket_title": ticket.title,
            "ticket_status": ticket.get_status_display(),
            "ticket_priority": ticket.get_priority_display(),
            "customer_name": ticket.customer.name if ticket.customer_id else "",
            "store_name": ticket.store.name if ticket.store_id else "",
            "assignee_name": _name(ticket.assignee) if ticket.assignee_id else "",
            "tracking_url": site + reverse("ticket-track", args=[ticket.tracking_token]),
            "ticket_url": site + reverse("ticket-detail", args=[ticket.pk]),
        })
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

    def __call__(self, channel):
        """(subject, body, params, note) for a channel."""
        saved = self.saved.get(channel)
        with translation.override(self.language):
            if saved is not None:
                try:
                    return self._render(saved.subject, saved.body, saved.sms_template_code, channel), ""
                except ValidationError as exc:
                    logger.warning("template %s unusable, built-in wording used: %s", saved.pk, exc.messages)
                    note = _("The saved template could not be used (%(error)s); the built-in wording was sent.") % {
                        "error": "; ".join(exc.messages)}
            else:
                note = ""
            subject, body = default_template(self.event, self.language)
            return self._render(subject, body, "", channel), note

    def _render(self, subject, body, code, channel):
        rendered_subject = template_render(subject, self.variables)
        rendered_body = template_render(body, self.variables)
        params = {}
        if code:
            params["template_code"] = code
        if channel in CODED_CHANNELS:
            # Providers fill their approved template from parameters: the variables the body uses,
            # in order (Tencent SMS is positional, Aliyun SMS and WeChat take them by name).
            params["values"] = {name: self.variables.get(name, "") for name in template_variables(body)}
        return rendered_subject, rendered_body, params


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


def _default_recipients(event, ticket, actor, context):
    """Who hears about an event when the caller does not say."""
    users, customers = [], []
    if ticket is None:
        return users, customers
    if event in (Event.TICKET_CREATED, Event.TICKET_RESOLVED, Event.ENGINEER_ON_THE_WAY,
                 Event.SATISFACTION_REQUEST) and ticket.customer_id:
        customers.append(ticket.customer)
    if event in (Event.TICKET_CREATED, Event.TICKET_ASSIGNED) and ticket.assignee_id:
        users.append(ticket.assignee)
    if event == Event.TICKET_COMMENTED:
        if actor is not None and (context or {}).get("public") and ticket.customer_id:
            customers.append(ticket.customer)
        if ticket.assignee_id and ticket.assignee_id != getattr(actor, "pk", None):
            users.append(ticket.assignee)
    users = [u for u in users if u.pk != getattr(actor, "pk", None) or event == Event.TICKET_ASSIGNED]
    return users, customers


def _occurrence(ticket):
    """Which happening of an event this is, when the caller does not say: the ticket's latest
    timeline event (the services write it just before they emit). So a second comment or a
    re-assignment is a new occurrence, while emitting the same change twice writes nothing."""
    if ticket is None:
        return ""
    from tickets.models import TimelineEvent

    latest = TimelineEvent.objects.filter(ticket=ticket).order_by("-pk").values_list("pk", flat=True).first()
    return str(latest or "")


def _key(base, who, channel):
    key = f"{base}:{who}:{channel}"
    if len(key) > KEY_LENGTH:  # keep the key whole (its last part names the channel) by hashing the base
        key = f"{hashlib.sha256(base.encode()).hexdigest()[:40]}:{who}:{channel}"
    return key


def event_emit(*, tenant, event, ticket=None, actor=None, users=None, customers=None, context=None, occurrence=""):
    """Write the outbox rows an event causes, inside the caller's transaction, and send them to
    Celery once it commits. Staff get the in-app bell plus the channels of their preference
    (from its minimum priority up; held until quiet hours end unless urgent); customers get one
    message on the first channel they can be reached on (WeChat, SMS, email), and a `skipped`
    row saying why when there is none or they opted out of an optional message.

    One row per event × occurrence × recipient × channel: `occurrence` defaults to the ticket's
    latest timeline event. Returns the rows written (none if they all existed already)."""
    if event not in Event.values:
        raise ValueError(f"unknown event {event!r}")
    default_users, default_customers = _default_recipients(event, ticket, actor, context)
    users = default_users if users is None else list(users)
    customers = default_customers if customers is None else list(customers)
    if not users and not customers:
        return []
    variables = _variables(tenant, ticket, actor, context)
    language = _language(tenant)
    render = _Renderer(tenant.pk, event, language, variables)
    priority = getattr(ticket, "priority", Priority.NORMAL)
    now = timezone.now()
    base_key = f"{event}:{getattr(ticket, 'pk', '-')}:{occurrence or _occurrence(ticket)}"
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

    profiles, preferences = {}, {}
    if users:  # (an empty IN needs no query, but building one costs as much as a small read)
        profiles = {p.user_id: p for p in StaffProfile.objects.filter(user__in=[u.pk for u in users])}
        preferences = {p.user_id: p for p in Preference.objects.filter(user__in=[u.pk for u in users], event=event)}
    for user in users:
        preference = preferences.get(user.pk)
        wanted = preference.channels if preference is not None else STAFF_DEFAULT_CHANNELS
        below = preference is not None and (
            PRIORITY_RANK.get(priority, 1) < PRIORITY_RANK.get(preference.min_priority, 0))
        external, unreachable = [], []
        if not below:
            quiet_until = None if priority == Priority.URGENT else _quiet(preference, now)
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

    # Service messages (the ticket's own news) go whatever the customer opted out of: no read.
    optional = customers and event not in SERVICE_EVENTS
    opted_out = set(CustomerOptOut.objects.filter(customer__in=[c.pk for c in customers])
                    .values_list("customer_id", flat=True)) if optional else set()
    for customer in customers:
        if customer.pk in opted_out:
            add(ChannelName.NONE, customer=customer, status=DeliveryStatus.SKIPPED,
                note=_("The customer opted out of optional messages."))
            continue
        skipped = []
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

    return _rows_save(rows, tenant_id=tenant.pk)


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
        transaction.on_commit(lambda: _enqueue(due), robust=True)
    return rows


# When a publish last failed, plus the pause: until then commits do not try the broker (each try
# costs CELERY_BROKER_CONNECTION_TIMEOUT seconds of the request) and leave their rows to the sweep.
_broker_down_until = 0.0


def _broker_pause():
    return getattr(settings, "NOTIFICATION_BROKER_PAUSE_SECONDS", 30)


def _enqueue(pairs, *, force=False):
    """Hand rows to Celery. If the broker is down the rows simply stay pending: the sweep (beat,
    and every worker at start-up) finds them later, so nothing is lost. After a failed publish,
    commits skip the broker for a pause (so an outage costs one request the connect timeout,
    not every request); the sweep (`force`) always tries."""
    global _broker_down_until
    from .tasks import notification_deliver_task

    if not force and time.monotonic() < _broker_down_until:
        logger.info("broker down a moment ago; %d notification(s) left for the sweep", len(pairs))
        return
    for notification_id, tenant_id in pairs:
        try:
            kwargs = {"notification_id": notification_id, "tenant_id": tenant_id}
            # Two ints: their repr is what Celery's size-capped saferepr walk would produce, at
            # a fraction of its cost (which was 14% of a publish).
            notification_deliver_task.apply_async(kwargs=kwargs, retry=False, argsrepr="()", kwargsrepr=repr(kwargs))
        except (BrokerError, OSError):  # broker unreachable: the sweep retries; the caller must not fail
            _broker_down_until = time.monotonic() + _broker_pause()
            logger.warning("broker unavailable; %d notification(s) left for the sweep", len(pairs), exc_info=True)
            return
        except Exception:  # e.g. an eager task that raised: the row keeps its state, the others still go
            logger.exception("could not enqueue notification %s", notification_id)
    _broker_down_until = 0.0


def notifications_sweep(*, limit=500):
    """Enqueue every row owed an attempt (see notifications_due); the beat task and worker
    start-up run it, across tenants. Returns how many rows it handed to the broker."""
    due = notifications_due(limit=limit)
    _enqueue(due, force=True)
    return len(due)


# --- delivery ---------------------------------------------------------------------------

def _recipient(notification):
    """Who to send to: the address written with the row, for the row's channel."""
    address = notification.address
    channel = notification.channel
    if notification.user_id:
        user = notification.user
        return Recipient(name=_name(user), user_id=user.pk,
                         email=address if channel == ChannelName.EMAIL else user.email,
                         wecom_userid=address if channel == ChannelName.WECOM else "",
                         phone=address if channel == ChannelName.SMS else "")
    customer = notification.customer
    return Recipient(name=customer.name,
                     phone=address if channel == ChannelName.SMS else "",
                     email=address if channel == ChannelName.EMAIL else "",
                     wechat_openid=address if channel == ChannelName.WECHAT else "")


def notification_deliver(*, notification_id, session=None):
    """Deliver one row at most once: a conditional update claims it (so a task run twice, or two
    workers, cannot both send), the channel sends with the row's idempotency key, and the
    outcome is recorded: sent, retry later with exponential backoff, waiting for credentials
    (no attempt used up), skipped (a customer's next channel is then tried), or dead-lettered
    after the last attempt. Returns the final status, or None if the row was not ours to send."""
    now = timezone.now()
    claimed = Notification.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=notification_id,
        status=DeliveryStatus.PENDING,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    if not claimed:
        return None
    notification = Notification.objects.select_related("user", "customer", "tenant").get(pk=notification_id)
    params = notification.params or {}
    message = Message(subject=notification.subject, body=notification.body, url=notification.url,
                      template_code=params.get("template_code", ""), params=params.get("values") or {})
    fallback = None
    try:
        # `make run` (NOTIFICATIONS_CONSOLE) prints every external message instead of sending it.
        name = "console" if settings.NOTIFICATIONS_CONSOLE else notification.channel
        if name in CODED_CHANNELS and not message.template_code:
            message = _coded_message(notification, message)
        options = {"session": session} if session is not None else {}
        channel = channel_for(name, notification.tenant.settings, **options)
        provider_id = channel.send(message=message, recipient=_recipient(notification),
                                   idempotency_key=f"{notification.tenant_id}:{notification.idempotency_key}")
    except MissingCredentials as exc:
        fields = {"status": DeliveryStatus.WAITING, "last_error": str(exc)[:500], "next_attempt_at": None,
                  "attempts": F("attempts") - 1}
    except MissingAddress as exc:
        fields = {"status": DeliveryStatus.SKIPPED, "last_error": str(exc)[:500], "next_attempt_at": None}
        fallback = str(exc)
    except DeliveryError as exc:
        fields = _failure(notification, str(exc), exc.retryable)
    except Exception as exc:  # an unexpected client error is retried like a network one
        logger.exception("notification %s failed", notification_id)
        fields = _failure(notification, f"{type(exc).__name__}: {exc}", True)
    else:
        fields = {"status": DeliveryStatus.SENT, "sent_at": timezone.now(), "last_error": "",
                  "provider_message_id": str(provider_id)[:128], "next_attempt_at": None}
    # Only the claim that holds the row records its outcome (a lease that ran out and was claimed
    # again has a higher attempt count).
    recorded = Notification.objects.filter(
        pk=notification_id, status=DeliveryStatus.SENDING, attempts=notification.attempts,
    ).update(**fields)
    if recorded and fallback is not None and notification.customer_id:
        _customer_fallback(notification, fallback)
    return fields["status"]


def _coded_message(notification, message):
    """SMS and WeChat providers send only templates they approved. A row written before the tenant
    saved such a template (with the provider's code) takes it from the template saved now,
    rendered with the row's variables; without one it waits (MissingCredentials), burning no
    attempt, until the template is saved and the waiting rows are released or retried."""
    variables = (notification.params or {}).get("variables") or {}
    render = _Renderer(notification.tenant_id, notification.event, _language(notification.tenant), variables)
    (subject, body, params), _note = render(notification.channel)
    if not params.get("template_code"):
        raise MissingCredentials(
            _("No %(channel)s template with the provider's template code is saved for this event; the message "
              "waits until one is (Notification templates).") % {"channel": ChannelName(notification.channel).label},
            code="no_template_code")
    params["variables"] = variables
    Notification.objects.filter(pk=notification.pk).update(subject=subject[:200], body=body[:4000], params=params)
    return Message(subject=subject, body=body, url=message.url, template_code=params["template_code"],
                   params=params.get("values") or {})


def _failure(notification, error, retryable):
    if retryable and notification.attempts < _max_attempts():
        return {"status": DeliveryStatus.PENDING, "last_error": error[:500],
                "next_attempt_at": timezone.now() + _backoff(notification.attempts)}
    return {"status": DeliveryStatus.DEAD, "last_error": error[:500], "next_attempt_at": None}


@transaction.atomic
def _customer_fallback(notification, error):
    """A provider refused a customer's address (unfollowed openid, bad number): write the row
    for their next reachable channel, with a note saying why. Returns it, or None."""
    if notification.channel not in CUSTOMER_CHANNEL_ORDER:
        return None
    customer, tenant = notification.customer, notification.tenant
    variables = (notification.params or {}).get("variables")
    if variables is None:
        return None
    prefix = notification.idempotency_key.rsplit(":", 1)[0]
    render = _Renderer(tenant.pk, notification.event, _language(tenant), variables)
    for channel in CUSTOMER_CHANNEL_ORDER[CUSTOMER_CHANNEL_ORDER.index(notification.channel) + 1:]:
        address = _customer_address(channel, customer)
        if not address:
            continue
        (subject, body, params), render_note = render(channel)
        params["variables"] = variables
        note = _("%(failed)s failed (%(error)s), so %(channel)s.") % {
            "failed": ChannelName(notification.channel).label, "error": error, "channel": ChannelName(channel).label}
        row = Notification(
            tenant=tenant, event=notification.event, channel=channel, idempotency_key=f"{prefix}:{channel}",
            customer=customer, ticket_id=notification.ticket_id, address=address[:255], subject=subject[:200],
            body=body[:4000], url=notification.url, params=params,
            note=" ".join(n for n in (note, render_note) if n)[:300], next_attempt_at=timezone.now(),
        )
        saved = _rows_save([row], tenant_id=tenant.pk)
        return saved[0] if saved else None
    return None


def notifications_due(*, now=None, limit=500):
    """(id, tenant_id) of rows owed an attempt, oldest first, and leases that ran out (a worker
    died mid-send) put back to pending. System sweep: runs across tenants (see tasks)."""
    now = now or timezone.now()
    Notification.objects.filter(status=DeliveryStatus.SENDING, next_attempt_at__lte=now).update(
        status=DeliveryStatus.PENDING
    )
    return list(
        Notification.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id").values_list("id", "tenant_id")[:limit]
    )


@transaction.atomic
def notification_retry(*, notification):
    """Put a dead-lettered, waiting or skipped row back in the queue (the admin's retry). Rows
    that only record that nobody could be reached (channel `none`) have nothing to retry."""
    updated = Notification.objects.filter(
        pk=notification.pk, status__in=[DeliveryStatus.DEAD, DeliveryStatus.WAITING, DeliveryStatus.SKIPPED],
    ).exclude(channel__in=[ChannelName.NONE, ChannelName.INAPP]).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="",
    )
    if updated:
        transaction.on_commit(lambda: _enqueue([(notification.pk, notification.tenant_id)]), robust=True)
    return bool(updated)


@transaction.atomic
def notifications_mark_read(*, user, ids=None):
    qs = Notification.objects.filter(user=user, channel=ChannelName.INAPP, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())


@transaction.atomic
def tenant_channels_waiting_release(*, tenant, channel=None):
    """After a tenant configures a channel (or all, without `channel`), its rows waiting for it
    go back to the queue. Returns how many."""
    waiting = Notification.objects.filter(tenant=tenant, status=DeliveryStatus.WAITING)
    if channel is not None:
        waiting = waiting.filter(channel=channel)
    return _release(waiting, tenant_id=tenant.pk)


def _release(waiting, *, tenant_id):
    ids = list(waiting.values_list("pk", flat=True))
    if not ids:
        return 0
    released = Notification.objects.filter(pk__in=ids, status=DeliveryStatus.WAITING).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), last_error="",
    )
    transaction.on_commit(lambda: _enqueue([(pk, tenant_id) for pk in ids]), robust=True)
    return released


# --- settings: templates and preferences ------------------------------------------------

def _language_codes():
    return [code for code, _name in settings.LANGUAGES]


def _choice_errors(*, event=None, channel=None, language=None, events=None, channels=None):
    errors = {}
    if event is not None and event not in (events or Event.values):
        errors["event"] = _("Select a valid choice. That choice is not one of the available choices.")
    if channel is not None and channel not in (channels or TEMPLATE_CHANNELS):
        errors["channel"] = _("Select a valid choice. That choice is not one of the available choices.")
    if language is not None and language not in _language_codes():
        errors["language"] = _("Select a valid choice. That choice is not one of the available choices.")
    return errors


def template_clean(*, channel, subject, body, sms_template_code):
    """Field errors of a template's wording (dict), empty if it is fine. Every template problem
    names its line (see rendering.template_check)."""
    errors = {}
    if len(subject) > 200:
        errors["subject"] = _("Ensure this value has at most %(n)d characters.") % {"n": 200}
    if not body.strip():
        errors["body"] = _("This field is required.")
    for name, source in (("subject", subject), ("body", body)):
        if name in errors:
            continue
        try:
            template_check(source)
        except ValidationError as exc:
            errors[name] = exc.messages[0]
    if len(sms_template_code) > 64:
        errors["sms_template_code"] = _("Ensure this value has at most %(n)d characters.") % {"n": 64}
    elif channel in CODED_CHANNELS and not sms_template_code:
        errors["sms_template_code"] = _("SMS and WeChat send only templates the provider approved: enter its code.")
    elif sms_template_code and not all(c.isalnum() or c in "_-" for c in sms_template_code):
        errors["sms_template_code"] = _("Use letters, digits, “_” and “-” only.")
    return errors


@transaction.atomic
def notification_template_save(*, tenant, event, channel, language, subject="", body, sms_template_code=""):
    """Create or replace the tenant's wording for event × channel × language. Raises
    ValidationError (field → message) and writes nothing if anything is wrong."""
    subject, body, sms_template_code = (subject or "").strip(), body or "", (sms_template_code or "").strip()
    errors = _choice_errors(event=event, channel=channel, language=language)
    errors.update(template_clean(channel=channel, subject=subject, body=body, sms_template_code=sms_template_code))
    if errors:
        raise ValidationError(errors)
    template, _created = NotificationTemplate.objects.update_or_create(
        tenant=tenant, event=event, channel=channel, language=language,
        defaults={"subject": subject, "body": body, "sms_template_code": sms_template_code},
    )
    if channel in CODED_CHANNELS:
        # Messages that waited for this provider template go again (credentials still missing: they wait again).
        _release(Notification.objects.filter(tenant=tenant, status=DeliveryStatus.WAITING, event=event,
                                             channel=channel), tenant_id=tenant.pk)
    return template


@transaction.atomic
def notification_template_reset(*, tenant, template):
    """Delete a saved template: the built-in wording applies again."""
    if template.tenant_id != tenant.pk:
        raise ValidationError(_("Select a valid choice. That choice is not one of the available choices."))
    template.delete()


def preference_clean(*, channels, min_priority, quiet_start, quiet_end):
    """Field errors of one preference row (dict), empty if it is fine."""
    errors = {}
    channels = list(channels or [])
    if any(c not in STAFF_CHANNELS for c in channels) or len(set(channels)) != len(channels):
        errors["channels"] = _("Select a valid choice. That choice is not one of the available choices.")
    if min_priority not in Priority.values:
        errors["min_priority"] = _("Select a valid choice. That choice is not one of the available choices.")
    for name, value in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        if value is not None and not isinstance(value, datetime.time):
            errors[name] = _("Enter a valid time.")
    if "quiet_start" not in errors and "quiet_end" not in errors:
        if (quiet_start is None) != (quiet_end is None):
            errors["quiet_end" if quiet_end is None else "quiet_start"] = _(
                "Set both ends of the quiet hours, or neither.")
        elif quiet_start is not None and quiet_start == quiet_end:
            errors["quiet_end"] = _("Quiet hours must end at another time than they start.")
    return errors


@transaction.atomic
def preferences_save(*, tenant, user, rows):
    """Save a staff member's preferences: `rows` maps event → {channels, min_priority,
    quiet_start, quiet_end}. All or nothing: raises ValidationError ("event: field" → message)."""
    if not Membership.objects.filter(tenant=tenant, user=user, is_active=True).exists():
        raise ValidationError(_("Select a member of staff of this tenant."))
    errors = {}
    for event, row in rows.items():
        if event not in STAFF_EVENTS:
            errors[str(event)[:30]] = _("Select a valid choice. That choice is not one of the available choices.")
            continue
        for field, message in preference_clean(**row).items():
            errors[f"{event}:{field}"] = message
    if errors:
        raise ValidationError(errors)
    saved = []
    for event, row in rows.items():
        preference, _created = Preference.objects.update_or_create(
            tenant=tenant, user=user, event=event,
            defaults={"channels": list(dict.fromkeys(row["channels"])), "min_priority": row["min_priority"],
                      "quiet_start": row["quiet_start"], "quiet_end": row["quiet_end"]},
        )
        saved.append(preference)
    return saved
