"""Intake from message channels and the API: a WeCom / WeChat / e-mail message becomes a ticket,
or a comment on the sender's open ticket, exactly once per message id (and a picture it carries
is fetched and attached once); an API request with an Idempotency-Key creates at most one ticket
however often it is retried."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.channels import DeliveryError
from notifications.channels.wechat import WeChatChannel
from notifications.channels.wecom import WeComChannel, media_download

from .. import fields as schema
from ..models import EventKind, IdempotencyRecord, InboundMessage, Source, Ticket, TicketTemplate
from ..selectors import ticket_by_number, ticket_open_for_sender
from .core import attachment_store, customer_link, ticket_comment_add, ticket_intake, timeline_event_add

# The channels whose image messages carry a MediaId to fetch, and who fetches it.
MEDIA_CHANNELS: dict[str, type[WeComChannel] | type[WeChatChannel]] = {
    Source.WECOM: WeComChannel, Source.WECHAT: WeChatChannel}
IMAGE_EXTENSION_BY_TYPE = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


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
    if channel in MEDIA_CHANNELS and (raw or {}).get("MediaId"):
        from ..tasks import inbound_media_fetch_task  # the tasks module calls these services

        inbound_media_fetch_task.delay_on_commit(tenant_id=tenant.pk, message_id=record.pk)
    return ticket, created, False


def inbound_media_fetch(*, message, last_try=False):
    """Fetch the picture of an image message from WeCom or the official account and attach it
    to the message's ticket, once. The download runs before any transaction is open. A refusal
    that will not change (expired media, not an image, too large, channel not configured) goes
    on the ticket's timeline as an internal note; a passing failure raises DeliveryError for the
    task to retry, and is noted instead on the last try. Returns the attachment or None."""
    media_id = str((message.payload or {}).get("MediaId") or "")
    channel_class = MEDIA_CHANNELS.get(message.channel)
    if not media_id or channel_class is None or message.ticket_id is None or message.media_attachment_id:
        return None
    limit_mb = settings.INBOUND_MEDIA_MAX_MB
    try:
        channel = channel_class.from_settings(message.tenant.settings)
        media = media_download(channel.client, media_id, max_bytes=limit_mb * 2**20)
    except DeliveryError as exc:
        if exc.retryable and not last_try:
            raise
        return _media_refused(message_id=message.pk, reason=str(exc))
    name = media.filename
    if name.rsplit(".", 1)[-1].lower() not in schema.IMAGE_EXTENSIONS:
        extension = IMAGE_EXTENSION_BY_TYPE.get(media.content_type, "jpg")
        name = f"{message.channel}-{message.external_id}.{extension}"
    upload = SimpleUploadedFile(name[-200:], media.content, content_type=media.content_type)
    try:
        described = schema.upload_check(upload, kind="image", max_size_mb=limit_mb)
    except ValidationError as exc:
        return _media_refused(message_id=message.pk, reason="; ".join(exc.messages))
    upload.content_type = described["content_type"]  # what the bytes are, not what was declared
    return _media_attach(message_id=message.pk, upload=upload)


def _locked_message(message_id):
    """The message row, locked, or None once its picture is attached (a redelivered task)."""
    # `of`: the ticket is an outer join, which PostgreSQL will not lock.
    rows = InboundMessage.objects.select_for_update(of=("self",)).select_related("ticket__customer")
    message = rows.get(pk=message_id)
    return None if message.media_attachment_id else message


@transaction.atomic
def _media_attach(*, message_id, upload):
    message = _locked_message(message_id)
    if message is None:
        return None
    ticket = message.ticket
    sender = ticket.customer.name if ticket.customer_id else ""
    event = timeline_event_add(
        ticket=ticket, kind=EventKind.ATTACHMENT, actor_label=sender, is_public=True,
        code="ticket.picture_received", params={"source": message.channel},
    )
    attachment = attachment_store(ticket=ticket, upload=upload, is_public=True, event=event)
    InboundMessage.objects.filter(pk=message.pk).update(media_attachment=attachment, media_error="")
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now())
    return attachment


@transaction.atomic
def _media_refused(*, message_id, reason):
    message = _locked_message(message_id)
    if message is None or message.media_error:
        return None
    reason = reason[:300]
    timeline_event_add(
        ticket=message.ticket, kind=EventKind.ATTACHMENT, is_public=False,
        code="ticket.picture_failed", params={"source": message.channel, "reason": reason},
    )
    InboundMessage.objects.filter(pk=message.pk).update(media_error=reason)
    return None


def ticket_intake_idempotent(*, tenant, key, request_hash, **intake):
    """Returns (ticket, replayed). The key row is inserted first: a concurrent retry with the
    same key waits on it and then gets the ticket the first request made."""
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(tenant=tenant, key=key, request_hash=request_hash)
            # No savepoint of the intake's own: it would only add two statements to a block that
            # is all or nothing anyway.
            ticket = ticket_intake(tenant=tenant, savepoint=False, **intake)
            IdempotencyRecord.objects.filter(pk=record.pk).update(ticket=ticket)
            return ticket, False
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.select_related("ticket").get(key=key)
    if record.request_hash != request_hash:
        raise IdempotencyConflict(key)
    return record.ticket, True
