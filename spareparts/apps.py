"""App config of spareparts: registers its engine hooks and fills the tickets `parts` field's
catalogue seam and the parts-used seam settlement reads."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SparepartsConfig(AppConfig):
    name = "spareparts"
    verbose_name = _("Spare parts")

    def ready(self):
        from scrm.config_cache import config_watch
        from tickets.extensions import parts_catalogue_register, parts_used_register, ticket_panel_register

        from . import (
            hooks,  # noqa: F401  (registers the workflow hooks)
            selectors,
        )
        from .catalogue import Catalogue
        from .models import Warehouse

        # The reservation path reads warehouses from the configuration cache (selectors.warehouse_depots).
        config_watch(Warehouse)
        parts_catalogue_register(Catalogue())
        parts_used_register(selectors.parts_used)
        ticket_panel_register("parts-ticket-panel")
        from notifications.offered import events_offer

        events_offer("parts_low_stock")
