"""Backfill (or recompute) the dashboards' daily roll-ups, e.g. after an import or a deploy."""

import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dashboards.services import ROLLUP_MAX_DAYS, rollup_backfill
from scrm.models import Tenant
from scrm.tenancy import tenant_scope


class Command(BaseCommand):
    help = "Recompute the dashboards' daily roll-ups of the last N days (default 90), per tenant."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="slug or id; every active tenant when omitted")
        parser.add_argument("--days", type=int, default=90, help=f"1–{ROLLUP_MAX_DAYS}, ending today")
        parser.add_argument("--since", help="first day (YYYY-MM-DD) instead of --days")

    def handle(self, *args, tenant=None, days=90, since=None, **options):
        today = timezone.localdate()
        if since:
            try:
                first = datetime.date.fromisoformat(since)
            except ValueError as exc:
                raise CommandError(f"--since must be a date YYYY-MM-DD, not {since!r}") from exc
        else:
            if not 1 <= days <= ROLLUP_MAX_DAYS:
                raise CommandError(f"--days must be between 1 and {ROLLUP_MAX_DAYS}")
            first = today - datetime.timedelta(days=days - 1)
        tenants = list(Tenant.objects.filter(is_active=True).order_by("pk"))
        if tenant:
            tenants = [t for t in Tenant.objects.order_by("pk") if t.slug == tenant or str(t.pk) == tenant]
            if not tenants:
                raise CommandError(f"unknown tenant {tenant!r}")
        for t in tenants:
            with tenant_scope(t):
                try:
                    rows = rollup_backfill(tenant=t, since=first, until=today)
                except ValidationError as exc:
                    raise CommandError(" ".join(exc.messages)) from exc
            self.stdout.write(f"{t.slug}: {rows} roll-up rows from {first} to {today}")
