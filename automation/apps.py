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
        from tickets.extensions import on_ticket_created
        from workflow.hooks import workflow_hook

        from .models import LeadRule, Trigger
        from .services import (
            approval_decide_on_task,
            event_record,
            lead_event_regrade,
            opportunity_won_guard,
            ticket_closed_relay,
        )
        from .services.leads import contact_on_handler_acted, contact_on_ticket_created

        config_watch(Trigger, LeadRule)
        for name in events.EVENT_NAMES:
            events.event_subscribe(name, event_record)
        for name in ("customer.created", "opportunity.stage_entered", "opportunity.amount_changed"):
            events.event_subscribe(name, lead_event_regrade)
        # A customer's last contact: a ticket of theirs created, a person acting on one of them.
        on_ticket_created(contact_on_ticket_created)
        workflow_hook("handler_acted")(contact_on_handler_acted)
        events.guard_register("opportunity.stage_change", opportunity_won_guard)
        workflow_hook("ticket_closed")(ticket_closed_relay)
        workflow_hook("task_completed")(approval_decide_on_task)

        from scrm.panels import customer_panel_register

        from .selectors import customer_grade_panel

        customer_panel_register(customer_grade_panel)

        from notifications.offered import events_offer

        events_offer("automation_notice")
