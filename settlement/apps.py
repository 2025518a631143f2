"""App config of settlement: registers the ticket_closed hook."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SettlementConfig(AppConfig):
    name = "settlement"
    verbose_name = _("Settlement")

    def ready(self):
        from notifications.offered import events_offer

        from . import hooks  # noqa: F401  (registers settlement_on_ticket_closed)

        events_offer("settlement_ready")
