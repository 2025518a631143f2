"""`manage.py mail_fetch --tenant <slug>`: read the tenant's mailbox once (what the beat task does)."""

from django.core.management.base import CommandError

from scrm.management.base import TenantCommand
from tickets.mail import MailboxError, mailbox_fetch


class Command(TenantCommand):
    help = "Turn the tenant's unread mail into tickets and comments."

    def handle_tenant(self, tenant, *args, **options):
        try:
            taken = mailbox_fetch(tenant=tenant)
        except MailboxError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{tenant.slug}: {taken} mail(s) taken in")
