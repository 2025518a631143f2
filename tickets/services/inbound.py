"""Intake from message channels and the API: a WeCom / WeChat / e-mail message becomes a ticket,
or a comment on the sender's open ticket, exactly once per message id; an API request with an
Idempotency-Key creates at most one ticket however often it is retried."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from ..models import IdempotencyRecord, InboundMessage, Source, TicketTemplate
from ..selectors import ticket_by_number, ticket_open_for_sender
from .core import customer_link, ticket_comment_add, ticket_intake


class IdempotencyConflict(Exception):
    """The key was used before for a different request body."""


def inbound_template(*, tenant):
    """The template messages become tickets of: the tenant's choice, else the first public one."""
    slug = tenant.settings.get("inbound_template")
    qs = TicketTemplate.objects.filter(is_active=True, current_version__isnull=False)
    template = qs.filter(slug=slug).first() if slug else None
    return template or qs.filter(is_public=True).order_by("id").first() or qs.order_by("id").first()


@transaction.atomic
def inbound_message_receive(*, tenant, channel, external_id, sender, body, subject="", raw=None, files=(),
                            ticket_number=""):
    """Returns (ticket, created, replayed). `sender` holds what identifies the customer (name,
    phone, email, wecom_external_userid, wechat_openid)."""
    if channel not in (Source.WECOM, Source.WECHAT, Source.EMAIL):
        raise ValueError(f"not a message channel: {channel}")
    if not external_id:
        raise ValidationError({"external_id": _("The message has no id.")})
    existing = InboundMessage.objects.filter(channel=channel, external_id=external_id).select_related("ticket").first()
    if existing is not None:
        return existing.ticket, False, True
    try:
        with transaction.atomic():
            record = InboundMessage.objects.create(
                tenant=tenant, channel=channel, external_id=external_id[:255],
                sender=str(sender.get("email") or sender.get("wecom_external_userid") or sender.get("wechat_openid")
                           or sender.get("phone") or "")[:255],
                payload=raw or {},
            )
    except IntegrityError:
        # The same message delivered twice at once: the other delivery owns it.
        existing = InboundMessage.objects.filter(channel=channel, external_id=external_id).first()
        return (existing.ticket if existing else None), False, True
    customer = customer_link(tenant=tenant, **{k: v for k, v in sender.items() if v})
    target = ticket_by_number(number=ticket_number) if ticket_number else None
    if target is not None and customer is not None and target.customer_id not in (None, customer.pk):
        target = None  # a reply quoting someone else's number does not get to comment on it
    if target is None and customer is not None:
        target = ticket_open_for_sender(customer=customer)
    if target is not None:
        ticket_comment_add(ticket=target, body=body or subject, actor=None,
                           actor_label=customer.name if customer else "", is_public=True, files=files)
        created = False
        ticket = target
    else:
        template = inbound_template(tenant=tenant)
        if template is None:
            raise ValidationError({"template": _("No published ticket template can receive messages.")})
        ticket = ticket_intake(
            tenant=tenant, source=channel, template=template, title=(subject or body or "")[:60].strip(),
            description=body, customer=customer, raw_payload=raw or {}, audience="public", partial=True,
            files=None,
        )
        if files:
            ticket_comment_add(ticket=ticket, body="", actor=None, actor_label=customer.name if customer else "",
                               is_public=True, files=files, notify=False)
        created = True
    InboundMessage.objects.filter(pk=record.pk).update(ticket=ticket)
    return ticket, created, False


def ticket_intake_idempotent(*, tenant, key, request_hash, **intake):
    """Returns (ticket, replayed). The key row is inserted first: a concurrent retry with the
    same key waits on it and then gets the ticket the first request made."""
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(tenant=tenant, key=key, request_hash=request_hash)
            # The intake's body without its own atomic: nested here it would only add a savepoint
            # (two statements) to a block that is all or nothing anyway.
            ticket = ticket_intake.__wrapped__(tenant=tenant, **intake)
            IdempotencyRecord.objects.filter(pk=record.pk).update(ticket=ticket)
            return ticket, False
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.select_related("ticket").get(key=key)
    if record.request_hash != request_hash:
        raise IdempotencyConflict(key)
    return record.ticket, True
