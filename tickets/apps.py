"""App config of tickets: the configuration intake caches is watched for changes; notifications
learns how to read a ticket (tickets.notify)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = _("Tickets")

    def ready(self):
        from notifications.subjects import subject_kind_register
        from scrm.config_cache import config_watch

        from .models import Category, ClassificationRule, TemplateVersion, TicketTemplate
        from .notify import TicketSubject

        config_watch(Category, TicketTemplate, TemplateVersion, ClassificationRule,
                     m2m=[ClassificationRule.add_tags.through])
        subject_kind_register("tickets.Ticket", TicketSubject())
        from notifications.offered import events_offer

        events_offer("ticket_created", "ticket_commented", "engineer_on_the_way", "ticket_resolved",
                     "satisfaction_request")
