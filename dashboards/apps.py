"""App config of dashboards: the 工作台 by role, the 实时进度看板, the manager dashboard with its
charts, the satisfaction results and exports. The top layer beside demo: it only reads the apps
below (and transfers tickets through workflow.lifecycle); nothing imports it. It sends the
customer the rating link when a workflow closes a ticket (a workflow hook)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "dashboards"
    verbose_name = _("Dashboards")

    def ready(self):
        from . import hooks  # noqa: F401  (registers the ticket_closed hook)
        from .cache import cache_watch

        cache_watch()  # the receivers that replace the dashboards cache's stamps
