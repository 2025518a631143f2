"""App config of notifications: saved message templates are cached per tenant (scrm.config_cache)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from scrm.config_cache import config_watch

        from .models import NotificationTemplate

        config_watch(NotificationTemplate)
