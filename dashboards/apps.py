"""App config of dashboards: the 工作台 by role, the 实时进度看板, the manager dashboard with its
charts, the satisfaction results and exports, quality checks (质检) with the per-ticket score and
the weekly report. The top layer beside demo: it only reads the apps below (and transfers tickets
through workflow.lifecycle, files revisit tickets through tickets' intake); nothing imports it.
It sends the customer the rating link when a workflow closes a ticket (a workflow hook)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "dashboards"
    verbose_name = _("Dashboards")

    def ready(self):
        from notifications.offered import events_offer
        from scrm.config_cache import config_watch
        from scrm.events import event_subscribe
        from tickets.extensions import comment_added_register, ticket_panel_register

        from . import (
            hooks,  # noqa: F401  (registers the ticket_closed hook)
            hooks_quality,  # (registers the status_changed hook)
        )
        from .cache import cache_watch  # the receivers that replace the dashboards cache's stamps
        from .models import QualityRule

        event_subscribe("ticket.rated", hooks_quality.on_ticket_rated)
        comment_added_register(hooks_quality.on_comment_added)
        ticket_panel_register("dashboards-ticket-panel")
        events_offer("low_rating", "quality_report")
        # The rescore of every public reply reads the active rules from the tenant's cached
        # configuration (dashboards.quality._active_rules).
        config_watch(QualityRule)
        cache_watch()  # the receivers that replace the dashboards cache's stamps
