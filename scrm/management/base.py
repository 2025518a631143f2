"""Base class for management commands that work inside one tenant (`--tenant slug-or-id`)."""

from django.core.management.base import BaseCommand, CommandError

from scrm.models import Tenant
from scrm.tenancy import tenant_scope


class TenantCommand(BaseCommand):
    """Subclasses implement handle_tenant(tenant, **options); it runs inside the tenant's scope."""

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug or id")

    def handle(self, *args, **options):
        ref = options.pop("tenant")
        query = Tenant.objects.filter(pk=int(ref)) if ref.isdigit() else Tenant.objects.filter(slug=ref)
        tenant = query.first()
        if tenant is None:
            raise CommandError(f"No tenant {ref!r}")
        with tenant_scope(tenant):
            return self.handle_tenant(tenant, *args, **options)

    def handle_tenant(self, tenant, *args, **options):
        raise NotImplementedError
