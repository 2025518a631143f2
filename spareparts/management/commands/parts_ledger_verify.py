"""Prove that every stock level equals the sum of its ledger movements, per tenant."""

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scope

from scrm.models import Tenant
from spareparts.selectors import ledger_mismatches


class Command(BaseCommand):
    help = "Check that stock levels (on hand, reserved) equal the sums of the movement ledger."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="slug or id; every tenant when omitted")

    def handle(self, *args, tenant=None, **options):
        tenants = list(Tenant.objects.order_by("pk"))
        if tenant:
            tenants = [t for t in tenants if t.slug == tenant or str(t.pk) == tenant]
            if not tenants:
                raise CommandError(f"unknown tenant {tenant!r}")
        failed = 0
        for t in tenants:
            with scope(tenant=t):
                bad = ledger_mismatches()
            for row in bad:
                self.stderr.write(f"{t.slug}: {row}")
            failed += len(bad)
            self.stdout.write(f"{t.slug}: {'OK' if not bad else f'{len(bad)} mismatch(es)'}")
        if failed:
            raise CommandError(f"{failed} stock level(s) differ from the ledger")
