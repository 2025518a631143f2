"""App config of the demo data (`manage.py seed_demo`): the top layer, so it may use every app's
services while no app depends on it."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = _("Demo data")
