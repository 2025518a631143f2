"""What a trigger can read of the thing an event is about (an opportunity, a customer, a ticket):
the condition fields and mapping sources each subject offers, and the plain context dict
workflow.conditions evaluates. Pure reads; no writes."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from scrm.models import Customer, Opportunity
from tickets.models import Ticket
from workflow.conditions import FIELDS as TICKET_FIELDS
from workflow.conditions import ticket_context

_CUSTOMER = {
    "customer.name": _("Customer name"),
    "customer.phone": _("Customer phone"),
    "customer.address": _("Customer address"),
    "customer.tier": _("Customer tier"),
    "customer.tags": _("Customer tags"),
    "store.code": _("Store code"),
    "store.name": _("Store name"),
    "region.code": _("Region code"),
}
_OPPORTUNITY = {
    "opportunity.title": _("Opportunity title"),
    "opportunity.amount": _("Opportunity amount (yuan)"),
    "opportunity.stage": _("Opportunity stage"),
    "opportunity.signed_date": _("Signed date"),
    **_CUSTOMER,
}
_TICKET = {
    "ticket.number": _("Ticket number"),
    "ticket.title": _("Ticket title"),
    **{key: key for key in TICKET_FIELDS},
    "customer.name": _("Customer name"),
    "customer.phone": _("Customer phone"),
    "customer.address": _("Customer address"),
}

# Event family → the fields a condition or a mapping may name.
SUBJECT_FIELDS: dict[str, dict[str, Any]] = {"opportunity": _OPPORTUNITY, "customer": _CUSTOMER, "ticket": _TICKET}


_SCHEDULE_STORE = {
    "store.name": _("Store name"),
    "store.code": _("Store code"),
    "store.address": _("Store address"),
    "store.phone": _("Store phone"),
    "region.code": _("Region code"),
}
_SCHEDULE_CUSTOMER = {
    "customer.name": _("Customer name"),
    "customer.phone": _("Customer phone"),
    "customer.address": _("Customer address"),
    "customer.tier": _("Customer tier"),
}
_OCCURRENCE = {"occurrence.date": _("Date of the run")}
# A schedule's target kind → the sources its field mapping may name.
SCHEDULE_SOURCES: dict[str, dict[str, Any]] = {
    "none": _OCCURRENCE,
    "stores": {**_OCCURRENCE, **_SCHEDULE_STORE},
    "customers": {**_OCCURRENCE, **_SCHEDULE_CUSTOMER, **_SCHEDULE_STORE},
    "assets": {**_OCCURRENCE, "asset.code": _("Asset code"), "asset.name": _("Asset name"), **_SCHEDULE_CUSTOMER,
               **_SCHEDULE_STORE},
}


def subject_type_of_event(event: str) -> str:
    return event.split(".", 1)[0]


def subject_type(subject) -> str:
    if isinstance(subject, Opportunity):
        return "opportunity"
    if isinstance(subject, Customer):
        return "customer"
    if isinstance(subject, Ticket):
        return "ticket"
    raise TypeError(f"no automation subject for {type(subject).__name__}")


def subject_label(subject) -> str:
    if isinstance(subject, Ticket):
        return f"{subject.number} {subject.title}"[:200]
    return str(subject)[:200]


def subject_customer(subject):
    if isinstance(subject, Customer):
        return subject
    return subject.customer


def subject_load(kind: str, pk: int):
    """The subject of a firing, or None when it is gone."""
    model = {"opportunity": Opportunity, "customer": Customer, "ticket": Ticket}[kind]
    related = {"opportunity": ("customer__store__region",), "customer": ("store__region",),
               "ticket": ("customer", "opportunity", "store", "region", "template", "category")}[kind]
    return model.objects.select_related(*related).filter(pk=pk).first()


def _customer_part(customer) -> dict:
    if customer is None:
        return dict.fromkeys(_CUSTOMER, "") | {"customer.tags": []}
    store = customer.store
    region = customer.region if customer.region_id else (store.region if store is not None else None)
    return {
        "customer.name": customer.name, "customer.phone": customer.phone, "customer.address": customer.address,
        "customer.tier": customer.tier, "customer.tags": [t.name for t in customer.tags.all()],
        "store.code": store.code if store is not None else "", "store.name": store.name if store is not None else "",
        "region.code": region.code if region is not None else "",
    }


def subject_context(subject) -> dict:
    """The plain dict conditions and mappings read (keys as in SUBJECT_FIELDS)."""
    if isinstance(subject, Opportunity):
        return {
            **_customer_part(subject.customer),
            "opportunity.title": subject.title, "opportunity.amount": subject.amount,
            "opportunity.stage": subject.stage, "opportunity.signed_date": subject.signed_date,
        }
    if isinstance(subject, Customer):
        return _customer_part(subject)
    context = ticket_context(subject)
    customer = subject.customer
    context.update({"ticket.number": subject.number, "ticket.title": subject.title,
                    "customer.name": customer.name if customer else "",
                    "customer.phone": customer.phone if customer else "",
                    "customer.address": customer.address if customer else ""})
    return context
