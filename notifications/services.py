"""Notification writes: turning an event into outbox rows (in the caller's transaction),
delivering one row with retries and backoff, the sweep that finds owed deliveries, and the
admin's retry of dead-lettered rows."""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from scrm.models import StaffProfile

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
    SERVICE_EVENTS,
    ChannelName,
    CustomerOptOut,
    DeliveryStatus,
    Event,
    Notification,
    NotificationTemplate,
    Preference,
)
from .rendering import template_render

logger = logging.getLogger(__name__)

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
STAFF_DEFAULT_CHANNELS = [ChannelName.WECOM]
CUSTOMER_CHANNEL_ORDER = [ChannelName.WECHAT, ChannelName.SMS, ChannelName.EMAIL]
LEASE = datetime.timedelta(minutes=5)


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
    return variables


def _render(tenant_id, event, channel, language, variables):
    saved = NotificationTemplate.objects.filter(event=event, channel=channel, language=language).first()
    if saved is not None:
        subject, body, code = saved.subject, saved.body, saved.sms_template_code
    else:
        (subject, body), code = default_template(event, language), ""
    with translation.override(language):
        return template_render(subject, variables), template_render(body, variables), code


def _quiet(preference, now):
    if preference is None or preference.quiet_start is None or preference.quiet_end is None:
        return None
    local = timezone.localtime(now)
    start, end, t = preference.quiet_start, preference.quiet_end, local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_at = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_at <= local:
        end_at += datetime.timedelta(days=1)
    return end_at


def _staff_address(channel, user, profile):
    if channel == ChannelName.WECOM:
        return getattr(profile, "wecom_userid", "")
    if channel == ChannelName.SMS:
        return getattr(profile, "phone", "")
    if channel == ChannelName.EMAIL:
        return user.email
    return ""


def _customer_address(channel, customer):
    return {
        ChannelName.WECHAT: customer.wechat_openid,
        ChannelName.SMS: customer.phone,
        ChannelName.EMAIL: customer.email,
    }.get(channel, "")


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


def event_emit(*, tenant, event, ticket=None, actor=None, users=None, customers=None, context=None, occurrence=""):
    """Write the outbox rows an event causes, inside the caller's transaction, and send them to
    Celery once it commits. Staff get the in-app bell plus the channels of their preference
    (from its minimum priority up; urgent ones even in quiet hours); customers get one message
    on the first channel they can be reached on. Returns the rows written."""
    if event not in Event.values:
        raise ValueError(f"unknown event {event!r}")
    default_users, default_customers = _default_recipients(event, ticket, actor, context)
    users = default_users if users is None else list(users)
    customers = default_customers if customers is None else list(customers)
    if not users and not customers:
        return []
    variables = _variables(tenant, ticket, actor, context)
    language = tenant.settings.get("language", settings.LANGUAGE_CODE)
    priority = getattr(ticket, "priority", "normal")
    now = timezone.now()
    base_key = f"{event}:{getattr(ticket, 'pk', '-')}:{occurrence}"
    rows = []

    def add(channel, *, user=None, customer=None, address="", note="", due=None):
        subject, body, code = _render(tenant.pk, event, channel, language, variables)
        who = f"u{user.pk}" if user is not None else f"c{customer.pk}"
        inapp = channel == ChannelName.INAPP
        rows.append(Notification(
            tenant=tenant, event=event, channel=channel, idempotency_key=f"{base_key}:{who}:{channel}"[:120],
            user=user, customer=customer, ticket=ticket, address=address, subject=subject[:200], body=body[:4000],
            url=variables.get("tracking_url" if customer is not None else "ticket_url", ""),
            params={"template_code": code} if code else {}, note=note[:300],
            status=DeliveryStatus.SENT if inapp else DeliveryStatus.PENDING,
            sent_at=now if inapp else None, next_attempt_at=None if inapp else (due or now),
        ))

    profiles = {p.user_id: p for p in StaffProfile.objects.filter(user__in=[u.pk for u in users])}
    preferences = {p.user_id: p for p in Preference.objects.filter(user__in=[u.pk for u in users], event=event)}
    for user in users:
        add(ChannelName.INAPP, user=user)
        preference = preferences.get(user.pk)
        wanted = preference.channels if preference is not None else STAFF_DEFAULT_CHANNELS
        if preference is not None and PRIORITY_RANK.get(priority, 1) < PRIORITY_RANK.get(preference.min_priority, 0):
            continue
        quiet_until = None if priority == "urgent" else _quiet(preference, now)
        for channel in wanted:
            if channel == ChannelName.INAPP or channel not in ChannelName.values:
                continue
            address = _staff_address(channel, user, profiles.get(user.pk))
            if not address:
                continue  # the in-app row already reaches them; nothing to fall back to
            note = _("Held for quiet hours.") if quiet_until else ""
            add(channel, user=user, address=address, note=note, due=quiet_until)

    opted_out = set(CustomerOptOut.objects.filter(customer__in=[c.pk for c in customers])
                    .values_list("customer_id", flat=True))
    for customer in customers:
        if customer.pk in opted_out and event not in SERVICE_EVENTS:
            continue
        skipped = []
        for channel in CUSTOMER_CHANNEL_ORDER:
            address = _customer_address(channel, customer)
            if address:
                note = _("No %(channels)s, so %(channel)s.") % {
                    "channels": "、".join(str(ChannelName(c).label) for c in skipped),
                    "channel": ChannelName(channel).label,
                } if skipped else ""
                add(channel, customer=customer, address=address, note=note)
                break
            skipped.append(channel)

    existing = set(Notification.objects.filter(idempotency_key__in=[r.idempotency_key for r in rows])
                   .values_list("idempotency_key", flat=True))
    rows = [r for r in rows if r.idempotency_key not in existing]
    Notification.objects.bulk_create(rows)
    due = [(r.pk, tenant.pk) for r in rows if r.status == DeliveryStatus.PENDING and r.next_attempt_at <= now]
    if due:
        transaction.on_commit(lambda: _enqueue(due), robust=True)
    return rows


def _enqueue(pairs):
    """Hand rows to Celery. If the broker is down the rows simply stay pending: the sweep (beat,
    and every worker at start-up) finds them later, so nothing is lost."""
    from .tasks import notification_deliver_task

    for notification_id, tenant_id in pairs:
        try:
            notification_deliver_task.apply_async(
                kwargs={"notification_id": notification_id, "tenant_id": tenant_id}, retry=False,
            )
        except Exception:  # broker unreachable: the sweep retries; intake must not fail
            logger.warning("broker unavailable; notification %s left for the sweep", notification_id, exc_info=True)
            return


# --- delivery ---------------------------------------------------------------------------

def _recipient(notification):
    if notification.user_id:
        user = notification.user
        return Recipient(name=_name(user), email=user.email, user_id=user.pk,
                         wecom_userid=notification.address if notification.channel == ChannelName.WECOM else "",
                         phone=notification.address if notification.channel == ChannelName.SMS else "")
    customer = notification.customer
    return Recipient(name=customer.name, phone=customer.phone, email=customer.email,
                     wechat_openid=customer.wechat_openid)


def notification_deliver(*, notification_id, session=None):
    """Deliver one row at most once: a conditional update claims it (so a task run twice, or two
    workers, cannot both send), the channel sends with the row's idempotency key, and the
    outcome is recorded: sent, retry later with exponential backoff, waiting for credentials,
    or dead-lettered after the last attempt. Returns the final status."""
    now = timezone.now()
    claimed = Notification.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=notification_id,
        status=DeliveryStatus.PENDING,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    if not claimed:
        return None
    notification = Notification.objects.select_related("user", "customer", "tenant").get(pk=notification_id)
    message = Message(subject=notification.subject, body=notification.body, url=notification.url,
                      template_code=notification.params.get("template_code", ""), params=notification.params)
    fields = {}
    try:
        # `make run` (NOTIFICATIONS_CONSOLE) prints every external message instead of sending it.
        name = "console" if settings.NOTIFICATIONS_CONSOLE else notification.channel
        options = {"session": session} if session is not None else {}
        channel = channel_for(name, notification.tenant.settings, **options)
        provider_id = channel.send(message=message, recipient=_recipient(notification),
                                   idempotency_key=f"{notification.tenant_id}:{notification.idempotency_key}")
    except MissingCredentials as exc:
        fields = {"status": DeliveryStatus.WAITING, "last_error": str(exc)[:500], "next_attempt_at": None}
    except MissingAddress as exc:
        fields = {"status": DeliveryStatus.SKIPPED, "last_error": str(exc)[:500], "next_attempt_at": None}
    except DeliveryError as exc:
        fields = _failure(notification, str(exc), exc.retryable)
    except Exception as exc:  # an unexpected client error is retried like a network one
        logger.exception("notification %s failed", notification_id)
        fields = _failure(notification, f"{type(exc).__name__}: {exc}", True)
    else:
        fields = {"status": DeliveryStatus.SENT, "sent_at": timezone.now(),
                  "provider_message_id": str(provider_id)[:128], "last_error": "", "next_attempt_at": None}
    Notification.objects.filter(pk=notification_id, status=DeliveryStatus.SENDING).update(**fields)
    return fields["status"]


def _failure(notification, error, retryable):
    if retryable and notification.attempts < _max_attempts():
        return {"status": DeliveryStatus.PENDING, "last_error": error[:500],
                "next_attempt_at": timezone.now() + _backoff(notification.attempts)}
    return {"status": DeliveryStatus.DEAD, "last_error": error[:500], "next_attempt_at": None}


def notifications_due(*, now=None, limit=500):
    """(id, tenant_id) of rows owed an attempt, oldest first, and leases that ran out (a worker
    died mid-send) put back to pending. System sweep: runs across tenants (see tasks)."""
    now = now or timezone.now()
    Notification.objects.filter(status=DeliveryStatus.SENDING, next_attempt_at__lte=now).update(
        status=DeliveryStatus.PENDING
    )
    return list(
        Notification.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at").values_list("id", "tenant_id")[:limit]
    )


@transaction.atomic
def notification_retry(*, notification):
    """Put a dead-lettered, waiting or skipped row back in the queue (the admin's retry)."""
    updated = Notification.objects.filter(
        pk=notification.pk, status__in=[DeliveryStatus.DEAD, DeliveryStatus.WAITING, DeliveryStatus.SKIPPED],
    ).update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="")
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
def tenant_channels_waiting_release(*, tenant):
    """After a tenant configures a channel, its waiting rows go back to the queue."""
    return Notification.objects.filter(status=DeliveryStatus.WAITING).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now()
    )
