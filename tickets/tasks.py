"""Ticket tasks: load by id, call a service, nothing else."""

import logging

from celery import shared_task

from notifications.channels import DeliveryError
from scrm.models import Tenant
from scrm.tasks import tenant_task

from .mail import MailboxError, mailbox_fetch
from .models import InboundMessage
from .services import inbound_media_fetch

logger = logging.getLogger(__name__)


@tenant_task(name="tickets.mail_fetch", ignore_result=True)
def mail_fetch_task(*, tenant_id):
    """Read one tenant's mailbox (runs in its scope). A mailbox that cannot be read is logged;
    the next beat run tries again, and mail is marked seen only once taken in."""
    tenant = Tenant.objects.get(pk=tenant_id)
    try:
        return mailbox_fetch(tenant=tenant)
    except MailboxError as exc:
        logger.warning("mail fetch for tenant %s failed: %s", tenant.slug, exc)
        return 0


@shared_task(name="tickets.mail_fetch_all", ignore_result=True)
def mail_fetch_all():
    """System beat task: one mail_fetch per active tenant with a mailbox. Tenant is not scoped."""
    tenant_ids = [
        pk for pk, config in Tenant.objects.filter(is_active=True).values_list("pk", "settings")
        if isinstance(config, dict) and isinstance(config.get("mailbox"), dict)
        and config["mailbox"].get("kind") in ("imap", "maildir")
    ]
    for tenant_id in tenant_ids:
        mail_fetch_task.delay_on_commit(tenant_id=tenant_id)
    return len(tenant_ids)


@tenant_task(name="tickets.inbound_media_fetch", bind=True, ignore_result=True, max_retries=5)
def inbound_media_fetch_task(self, *, tenant_id, message_id):
    """Fetch an image message's picture; a passing failure (timeout, 5xx, busy) is tried again
    after 1, 2, 4, 8 and 16 minutes, the last failure is noted on the ticket."""
    message = InboundMessage.objects.get(pk=message_id)
    try:
        inbound_media_fetch(message=message, last_try=self.request.retries >= self.max_retries)
    except DeliveryError as exc:
        raise self.retry(exc=exc, countdown=60 * 2**self.request.retries) from None
