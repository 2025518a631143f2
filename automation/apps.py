"""App config of automation: it hears scrm's business events (scrm.events) and the workflow's
hooks, guards an opportunity's 签约 behind its approval, and keeps its triggers in the tenant's
cached configuration."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = _("Automation")

    def ready(self):
        from scrm import events
        from scrm.config_cache import config_watch
        from workflow.hooks import workflow_hook

        from .models import Trigger
        from .services import approval_decide_on_task, event_record, opportunity_won_guard, ticket_closed_relay

        config_watch(Trigger)
        for name in events.EVENT_NAMES:
            events.event_subscribe(name, event_record)
        events.guard_register("opportunity.stage_change", opportunity_won_guard)
        workflow_hook("ticket_closed")(ticket_closed_relay)
        workflow_hook("task_completed")(approval_decide_on_task)

        from scrm.panels import customer_panel_register

        from .selectors import customer_grade_panel

        customer_panel_register(customer_grade_panel)

        from notifications.offered import events_offer

        events_offer("automation_notice")
