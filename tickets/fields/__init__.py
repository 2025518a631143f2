"""Custom fields of ticket templates: the one schema (what a field definition may say), the one
cleaning path from submitted input to stored JSON, and the form and display built on them."""

from .base import (
    AUDIENCES,
    BLOCKED_EXTENSIONS,
    DECIMAL_LIMIT,
    FEN,
    FIELD_SETTINGS,
    FILE_EXTENSIONS,
    IMAGE_EXTENSIONS,
    INTEGER_LIMIT,
    KEY_RE,
    LANGS,
    MAX_CHOICES,
    MAX_FIELDS,
    MAX_LIST_ITEMS,
    MAX_REGEX_LENGTH,
    MAX_TREE_DEPTH,
    MAX_TREE_NODES,
    MONEY_LIMIT,
    PREFILL_SOURCES,
    PUBLIC_MODES,
    STAFF_MODES,
)
from .data import data_clean, display_value, field_label, prefill_values, upload_check
from .forms import RawField, TicketDataForm, form_class_for
from .registry import FIELD_TYPES, FieldType
from .schema import schema_validate
from .widgets import AddressWidget, MultipleFileInput

__all__ = [
    "AUDIENCES",
    "BLOCKED_EXTENSIONS",
    "DECIMAL_LIMIT",
    "FEN",
    "FIELD_SETTINGS",
    "FIELD_TYPES",
    "FILE_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "INTEGER_LIMIT",
    "KEY_RE",
    "LANGS",
    "MAX_CHOICES",
    "MAX_FIELDS",
    "MAX_LIST_ITEMS",
    "MAX_REGEX_LENGTH",
    "MAX_TREE_DEPTH",
    "MAX_TREE_NODES",
    "MONEY_LIMIT",
    "PREFILL_SOURCES",
    "PUBLIC_MODES",
    "STAFF_MODES",
    "AddressWidget",
    "FieldType",
    "MultipleFileInput",
    "RawField",
    "TicketDataForm",
    "data_clean",
    "display_value",
    "field_label",
    "form_class_for",
    "prefill_values",
    "schema_validate",
    "upload_check",
]
