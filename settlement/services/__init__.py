"""Settlement writes; import the public names from here."""

from .config import (
    field_map_save,
    party_create,
    price_set,
    rule_save,
    rule_spec,
    rule_validate,
    service_item_create,
    template_field_types,
)
from .lines import active_rules, period_date_for, ticket_lines_compute
from .runs import run_approve, run_execute, run_pay, run_retry, run_review, run_send_back, run_start

__all__ = [
    "active_rules", "field_map_save", "party_create", "period_date_for", "price_set", "rule_save", "rule_spec",
    "rule_validate", "run_approve", "run_execute", "run_pay", "run_retry", "run_review", "run_send_back", "run_start",
    "service_item_create", "template_field_types", "ticket_lines_compute",
]
