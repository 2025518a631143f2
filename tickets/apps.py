"""App config of tickets: the configuration intake caches is watched for changes."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = _("Tickets")

    def ready(self):
        from scrm.config_cache import config_watch

        from .models import Category, ClassificationRule, TemplateVersion, TicketTemplate

        config_watch(Category, TicketTemplate, TemplateVersion, ClassificationRule,
                     m2m=[ClassificationRule.add_tags.through])
