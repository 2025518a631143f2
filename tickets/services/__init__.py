"""Ticket writes (see core, config and inbound); import from here."""

from .config import (
    api_key_create,
    api_key_hash,
    api_key_mark_used,
    api_key_revoke,
    category_get_or_create,
    classification_rule_save,
    template_create,
    template_draft_set,
    template_export,
    template_from_preset,
    template_import,
    template_publish,
    template_update,
)
from .core import (
    customer_link,
    ticket_assign,
    ticket_comment_add,
    ticket_data_update,
    ticket_engineer_depart,
    ticket_intake,
    ticket_merge,
    ticket_number_next,
    ticket_split,
    ticket_status_change,
    ticket_transition,
    timeline_event_add,
)
from .inbound import (
    IdempotencyConflict,
    inbound_media_fetch,
    inbound_message_receive,
    inbound_template,
    ticket_intake_idempotent,
)

__all__ = [
    "IdempotencyConflict", "api_key_create", "api_key_hash", "api_key_mark_used", "api_key_revoke",
    "category_get_or_create",
    "classification_rule_save", "customer_link", "inbound_media_fetch", "inbound_message_receive", "inbound_template",
    "template_create", "template_draft_set", "template_export", "template_from_preset", "template_import",
    "template_publish", "template_update", "ticket_assign", "ticket_comment_add", "ticket_data_update",
    "ticket_engineer_depart",
    "ticket_intake", "ticket_intake_idempotent", "ticket_merge", "ticket_number_next", "ticket_split",
    "ticket_status_change", "ticket_transition", "timeline_event_add",
]
