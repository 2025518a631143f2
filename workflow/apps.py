"""App config of workflow: a template's published workflow and the SLA calendars are cached per
tenant (scrm.config_cache), and the workflow plugs into tickets' extension points
(tickets/extensions.py): it starts on every new ticket, widens visibility to the tickets whose
tasks a person holds, narrows an engineer's fields to their nodes', and owns the lifecycle."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = _("Workflow")

    def ready(self):
        from scrm.config_cache import config_watch

        from .models import BusinessCalendar, CalendarDay, SlaPolicy, Workflow, WorkflowVersion

        config_watch(Workflow, WorkflowVersion, BusinessCalendar, CalendarDay, SlaPolicy)

        from tickets import extensions

        from . import escalation, lifecycle, sla_ticket  # noqa: F401  (registers the SLA hooks and actions)
        from .engine import workflow_start_on_created
        from .selectors import task_holder_visibility_q, ticket_field_scope

        # The SLA clock first: entering the first node sets node limits from the ticket's policy.
        extensions.on_ticket_created(sla_ticket.sla_start_on_created)
        extensions.on_ticket_created(workflow_start_on_created)
        extensions.visibility_register(task_holder_visibility_q)
        extensions.field_scope_register(ticket_field_scope)
        extensions.lifecycle_register(lifecycle)
        from notifications.offered import events_offer

        events_offer("ticket_assigned", "ticket_returned", "node_due_soon", "ticket_escalated", "sla_breach_digest")

        from . import dispatch_rule  # noqa: F401  (registers the "dispatch" handler rule kind)
        from .pool import pool_hooks_register

        pool_hooks_register()
        extensions.list_badges_register(sla_ticket.sla_list_badges)
