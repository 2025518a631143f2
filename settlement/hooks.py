"""Settlement's plug into the workflow: a ticket's lines are computed when it reaches Closed, by
whichever path (engine end node, closing by hand, merge), inside that transaction."""

from workflow.hooks import workflow_hook

from .services import ticket_lines_compute


@workflow_hook("ticket_closed")
def settlement_on_ticket_closed(*, ticket, actor, **_):
    # A merged-away ticket is not work done: its target carries the settlement.
    if ticket.merged_into_id is None:
        ticket_lines_compute(ticket=ticket, actor=actor)
