"""Bulk actions from the ticket list (assign, close): each ticket goes through the lifecycle's own
service in its own transaction, so one refusal (a closed ticket, a ticket whose workflow is
elsewhere) is reported and does not undo the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .. import extensions

BULK_ACTIONS = ("assign", "close")
BULK_MAX = 100


@dataclass
class BulkResult:
    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (ticket number, why)


def tickets_bulk_apply(*, tickets: list[Any], action: str, actor: Any, assignee: Any = None) -> BulkResult:
    """Apply `action` to each of `tickets` (already narrowed to what `actor` may see)."""
    if action not in BULK_ACTIONS:
        raise ValidationError({"action": _("Unknown action.")})
    if action == "assign" and assignee is None:
        raise ValidationError({"assignee": _("Choose who gets the tickets.")})
    result = BulkResult()
    lifecycle = extensions.lifecycle()
    for ticket in tickets:
        if extensions.field_scope(ticket=ticket, user=actor) is not None:
            result.refused.append((ticket.number, _("you work this ticket through its workflow task")))
            continue
        try:
            if action == "assign":
                lifecycle.ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
            else:
                lifecycle.ticket_status_change(ticket=ticket, action="close", actor=actor)
        except ValidationError as exc:
            result.refused.append((ticket.number, " ".join(exc.messages)))
        else:
            result.done.append(ticket.number)
    return result
