"""Ticket tasks: load by id, call a service, nothing else."""

import logging

from celery import shared_task

from scrm.models import Tenant
from scrm.tasks import tenant_task

from .mail import MailboxError, mailbox_fetch

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
