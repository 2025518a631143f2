"""App config of the core app."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_role_groups(sender, **kwargs):
    # Infrastructure, not business logic: role groups are data derived from code, so every
    # migrate (including the test database's) leaves them matching ROLE_PERMISSIONS. It waits
    # for the last app's post_migrate, when every app's permissions exist.
    from django.apps import apps

    # (post_migrate is sent only to apps with a models module: the demo app has none.)
    last = [config for config in apps.get_app_configs() if config.models_module is not None][-1]
    if sender.label != last.label:
        return
    from .permissions import role_groups_sync

    role_groups_sync()


class ScrmConfig(AppConfig):
    name = "scrm"
    verbose_name = _("Organisation and customers")

    def ready(self):
        post_migrate.connect(_sync_role_groups, dispatch_uid="scrm-role-groups")
        from .config_cache import config_watch, tenant_cache_watch
        from .models import Region, Skill, Store

        # Skill: smart dispatch names the skills a ticket needs from the cache (workflow/dispatch_loader.py).
        config_watch(Region, Skill, Store)
        tenant_cache_watch()
