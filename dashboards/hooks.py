"""Workflow hooks of dashboards: when a ticket closes, the customer gets the rating invitation
(notifications' `satisfaction_request`, whose message carries the tracking link with the form)."""

from notifications.services import event_emit
from workflow.hooks import workflow_hook


@workflow_hook("ticket_closed")
def csat_request_on_close(*, ticket, actor, **_):
    if ticket.customer_id and ticket.merged_into_id is None:
        event_emit(tenant=ticket.tenant, event="satisfaction_request", ticket=ticket, actor=actor)
