"""App config of spareparts; its models arrive with its issue (see README "Known gaps")."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SparepartsConfig(AppConfig):
    name = "spareparts"
    verbose_name = _("Spare parts")
