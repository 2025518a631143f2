"""Automation writes (see triggers, schedules, revisits); import from here."""

from .revisits import revisit_record
from .schedules import (
    schedule_create,
    schedule_occurrence_run,
    schedule_rule,
    schedule_upcoming,
    schedule_update,
    schedules_due,
)
from .triggers import (
    approval_decide_on_task,
    event_record,
    firing_retry,
    firing_run,
    firings_due,
    opportunity_won_guard,
    ticket_closed_relay,
    trigger_create,
    trigger_problems,
    trigger_update,
)

__all__ = [
    "approval_decide_on_task",
    "event_record",
    "firing_retry",
    "firing_run",
    "firings_due",
    "opportunity_won_guard",
    "revisit_record",
    "schedule_create",
    "schedule_occurrence_run",
    "schedule_rule",
    "schedule_upcoming",
    "schedule_update",
    "schedules_due",
    "ticket_closed_relay",
    "trigger_create",
    "trigger_problems",
    "trigger_update",
]
