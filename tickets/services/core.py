"""Ticket writes: intake from any channel, the timeline, numbering, field edits, comments and
attachments, the engineer's departure, and split. One transaction each; every change of a ticket
writes exactly one timeline event here. Status, assignee and merge belong to the lifecycle owner
(workflow/lifecycle.py), reached from this app through `tickets.extensions.lifecycle()`."""


from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.services import emits_held, event_emit
from scrm.config_cache import config_pinned
from scrm.db import counter_increment
from scrm.models import Customer
from scrm.selectors import store_cached
from scrm.services import customer_create

from .. import fields as schema
from ..classification import rule_match
from ..extensions import comment_added, ticket_created
from ..models import (
    PRIORITY_RANK,
    Attachment,
    EventKind,
    Priority,
    Source,
    Ticket,
    TicketNumberSequence,
    TicketTemplate,
    TimelineEvent,
    tracking_token_new,
)
from ..selectors import classification_rules
from ..timeline import timeline_code_known

MAX_TITLE = 200


def invalid_choice():
    """The message for an id that is not one of the caller's choices (another tenant's, too)."""
    return _("Select a valid choice. That choice is not one of the available choices.")


# --- timeline ---------------------------------------------------------------------------

def _actor_label(actor, fallback=""):
    if actor is None:
        return fallback
    return actor.first_name or actor.username


def timeline_event_add(*, ticket, kind, actor=None, actor_label="", code="", params=None, message="", changes=None,
                       is_public=False):
    """Append one event to a ticket's timeline. Called by the services in this package (and
    the workflow engine) inside their transaction; never on its own from a view. What happened
    is `code` + `params` (registered in tickets/timeline.py, rendered in the reader's language);
    `message` is only what a person typed."""
    event = timeline_event_new(ticket=ticket, kind=kind, actor=actor, actor_label=actor_label, code=code,
                               params=params, message=message, changes=changes, is_public=is_public)
    event.save()
    return event


def timeline_event_new(*, ticket, kind, actor=None, actor_label="", code="", params=None, message="", changes=None,
                       is_public=False):
    """The event `timeline_event_add` would append, unsaved: a caller writing several events of
    one step saves them together with `timeline_events_save`, in the order given."""
    if code and not timeline_code_known(code):
        raise ValueError(f"unknown timeline code {code!r}")
    return TimelineEvent(
        tenant_id=ticket.tenant_id, ticket=ticket, kind=kind, actor=actor,
        actor_label=actor_label or _actor_label(actor), code=code, params=params or {}, message=message,
        changes=changes or [],
        is_public=is_public,
    )


def timeline_events_save(events):
    """Append events made by `timeline_event_new`, in their order, with one INSERT."""
    if len(events) == 1:
        events[0].save()
    elif events:
        TimelineEvent.objects.bulk_create(events)
    return events


# --- numbering --------------------------------------------------------------------------

def _sequence_increment(*, tenant_id, prefix, day):
    """Add one to the counter row and return the new value, or None when there is no row yet:
    one `UPDATE … RETURNING` that locks the row until the transaction ends (scrm.db)."""
    return counter_increment(TicketNumberSequence, field="last_value", tenant=tenant_id, prefix=prefix, day=day)


def ticket_number_next(*, tenant, prefix, day=None):
    """The next number for prefix and day, e.g. WX-20261123-0001. The counter row is locked
    until the caller's transaction ends, so numbers are unique and a rollback leaves no gap.
    Call it as late as the transaction allows: concurrent intakes of a tenant queue on that lock."""
    day = day or timezone.localdate()
    value = _sequence_increment(tenant_id=tenant.pk, prefix=prefix, day=day)
    if value is None:
        try:
            with transaction.atomic():
                TicketNumberSequence.objects.create(tenant=tenant, prefix=prefix, day=day, last_value=1)
            value = 1
        except IntegrityError:
            # Another transaction created today's row first; wait for its lock and continue.
            value = _sequence_increment(tenant_id=tenant.pk, prefix=prefix, day=day)
    return f"{prefix}-{day:%Y%m%d}-{value:04d}"


# --- customers --------------------------------------------------------------------------

def customer_link(*, tenant, name="", phone="", email="", wecom_external_userid="", wechat_openid="",
                  region=None, store=None):
    """The customer these identifiers belong to, created when none matches. Phone, WeCom id
    and openid are unique per tenant; email links only when it points at one customer."""
    lookups = [("phone", phone), ("wecom_external_userid", wecom_external_userid), ("wechat_openid", wechat_openid)]
    for field, value in lookups:
        if value:
            # Spelling out the unique index's condition (non-empty) lets PostgreSQL use that
            # partial index; unique, so no ORDER BY (first() would add one).
            found = list(Customer.objects.filter(Q(**{field: value}) & ~Q(**{field: ""}))[:1])
            if found:
                return found[0]
    if email:
        found = list(Customer.objects.filter(email__iexact=email)[:2])
        if len(found) == 1:
            return found[0]
    if not (phone or wecom_external_userid or wechat_openid or email):
        return None
    fallback_name = name or phone or email or _("WeChat customer")
    try:
        # A refusal by customer_create (a duplicate) leaves this transaction usable.
        return customer_create(
            tenant=tenant, name=fallback_name[:60], phone=phone, email=email,
            wecom_external_userid=wecom_external_userid, wechat_openid=wechat_openid, region=region, store=store,
        )
    except ValidationError as exc:
        if "phone" in getattr(exc, "error_dict", {}) and phone:
            # A concurrent intake created the same customer a moment ago.
            existing = Customer.objects.filter(phone=phone).first()
            if existing is not None:
                return existing
        raise


# --- intake -----------------------------------------------------------------------------

def _text_of(title, description, data):
    parts = [title or "", description or ""]
    parts.extend(str(v) for v in data.values() if isinstance(v, str))
    return "\n".join(parts)


def _first_of_type(version_fields, data, field_type):
    for field in version_fields:
        if field["type"] == field_type and data.get(field["key"]) not in (None, "", []):
            return data[field["key"]]
    return None


def attachment_store(*, ticket, upload, is_public, actor=None, event=None, field_key=""):
    """Store one checked upload as the ticket's attachment: a field's value, or an event's file."""
    return Attachment.objects.create(
        tenant_id=ticket.tenant_id, ticket=ticket, event=event, field_key=field_key, file=upload,
        name=upload.name[:200], size=upload.size, content_type=(getattr(upload, "content_type", "") or "")[:100],
        is_public=is_public, uploaded_by=actor,
    )


def attachments_store(*, ticket, files_to_store, actor, is_public):
    stored = {}
    for key, uploads in files_to_store.items():
        stored[key] = []
        for upload in uploads:
            attachment = attachment_store(ticket=ticket, upload=upload, is_public=is_public, actor=actor, field_key=key)
            stored[key].append({"id": attachment.pk, "name": attachment.name, "size": attachment.size})
    return stored


def ticket_intake(
    *, tenant, source, template=None, data=None, files=None, audience="staff", title="", description="",
    priority=None, customer=None, contact=None, opportunity=None, store=None, region=None, actor=None,
    raw_payload=None, tags=(), partial=False, cleaned=None, savepoint=True,
):
    """Create a ticket from any channel: classify, validate the data against the template's
    published version, link the customer, number it, write its first timeline event and the
    notifications it causes — all or nothing.

    `contact` (name/phone/email/wecom_external_userid/wechat_openid) links or creates the
    customer when `customer` is not given. Raises ValidationError with field errors.

    `cleaned` is for a caller that has just validated `data`/`files` itself with
    `fields.data_clean` on this template's published version, the same audience and partial —
    the web form's clean() does — and passes its result `(cleaned_data, files_to_store)`
    instead of having the same input validated twice.

    Numbering: called outside a transaction (a web form, the API, a message channel), the
    number is taken once the input is valid, in a transaction of its own, and the ticket is
    then written in the next one. The day's counter row is locked only for that one UPDATE, not
    for the whole intake and the workflow start after it: concurrent intakes of a tenant no
    longer queue on it. The price is a gap in the day's numbers when the write that follows
    fails (a database error, a hook refusing). Inside a caller's transaction the number is taken
    in it, as late as it can be, and a rollback leaves no gap; `savepoint=False` skips the
    savepoint (two statements) for a caller whose block is all or nothing anyway."""
    # Templates, rules, stores, message templates and the workflow come from the tenant's
    # cached configuration, its stamp read once for the whole intake.
    with config_pinned(tenant):
        if source not in Source.values:
            raise ValueError(f"unknown source {source!r}")
        data = dict(data or {})
        title = (title or "").strip()
        if len(title) > MAX_TITLE:
            raise ValidationError({"title": _("Ensure this value has at most %(n)d characters.") % {"n": MAX_TITLE}})
        verdict = rule_match(classification_rules(), _text_of(title, description, data))
        rule = verdict.rule if verdict else None
        if template is None and rule and rule.template_id:
            template = TicketTemplate.objects.filter(pk=rule.template_id, is_active=True).first()
        if template is None:
            raise ValidationError({"template": _("Choose a ticket template.")})
        if template.tenant_id != tenant.pk:
            raise ValidationError({"template": invalid_choice()})
        version = template.current_version
        if version is None or not template.is_active:
            raise ValidationError({"template": _("This template is not published.")})

        # Message channels (WeCom, e-mail) carry free text only: staff fill the fields later.
        if cleaned is None:
            cleaned, files_to_store = schema.data_clean(
                version.fields, data, audience=audience, files=files, partial=partial)
        else:
            cleaned, files_to_store = cleaned

        for obj, field in ((customer, "customer"), (opportunity, "opportunity"), (store, "store"), (region, "region")):
            if obj is not None and obj.tenant_id != tenant.pk:
                raise ValidationError({field: invalid_choice()})
        _opportunity_check(opportunity, customer)
        if store is None:
            store_id = _first_of_type(version.fields, cleaned, "store")
            if store_id:
                store = store_cached(store_id)
        if customer is None and contact:
            contact = {k: v for k, v in contact.items() if v}
            if not contact.get("phone"):
                phone = _first_of_type(version.fields, cleaned, "phone")
                if phone:
                    contact["phone"] = phone

        priority = priority or template.default_priority
        if rule and rule.priority and PRIORITY_RANK[rule.priority] > PRIORITY_RANK[priority]:
            priority = rule.priority
        if priority not in Priority.values:
            raise ValidationError({"priority": _("Unknown priority.")})

        number = None
        if not transaction.get_connection().in_atomic_block:
            number = ticket_number_next(tenant=tenant, prefix=template.number_prefix)
        return _intake_write(
            tenant=tenant, source=source, template=template, version=version, rule=rule, verdict=verdict,
            cleaned=cleaned, files_to_store=files_to_store, audience=audience, title=title,
            description=description, priority=priority, customer=customer, contact=contact,
            opportunity=opportunity, store=store, region=region, actor=actor, raw_payload=raw_payload, tags=tags,
            number=number, savepoint=savepoint,
        )


def _opportunity_check(opportunity, customer):
    if opportunity is not None and customer is not None and opportunity.customer_id != customer.pk:
        raise ValidationError({"opportunity": _("This opportunity belongs to another customer.")})


def _intake_write(*, savepoint, **state):
    """ticket_intake's writes, in one transaction, once the input is known to be valid."""
    with transaction.atomic(savepoint=savepoint):
        return _intake_rows(**state)


def _intake_rows(*, tenant, source, template, version, rule, verdict, cleaned, files_to_store, audience, title,
                 description, priority, customer, contact, opportunity, store, region, actor, raw_payload, tags,
                 number):
    if customer is None and contact:
        customer = customer_link(tenant=tenant, store=store, region=getattr(store, "region", None), **contact)
        _opportunity_check(opportunity, customer)  # the customer the contact details linked
    if store is None and customer is not None and customer.store_id:
        store = customer.store
    if region is None:
        region = store.region if store is not None else (customer.region if customer is not None else None)
    if not title:
        who = customer.name if customer is not None else ""
        title = f"{template.name} · {who}" if who else template.name

    ticket = Ticket.objects.create(
        tenant=tenant, number=number or ticket_number_next(tenant=tenant, prefix=template.number_prefix),
        template=template, template_version=version,
        category_id=(rule.category_id if rule and rule.category_id else template.category_id),
        title=title[:MAX_TITLE], description=description or "", priority=priority, source=source,
        customer=customer, opportunity=opportunity, region=region, store=store, created_by=actor,
        data=cleaned, raw_payload=raw_payload or {}, tracking_token=tracking_token_new(tenant.pk),
    )
    if files_to_store:
        ticket.data.update(attachments_store(
            ticket=ticket, files_to_store=files_to_store, actor=actor, is_public=audience == "public",
        ))
        Ticket.objects.filter(pk=ticket.pk).update(data=ticket.data)
    tag_ids = set(rule.tag_ids) if rule else set()
    tag_ids.update(t.pk for t in tags)
    if tag_ids:  # a new ticket has none: one INSERT, no read first (as tags.add() would make)
        Ticket.tags.through.objects.bulk_create(
            [Ticket.tags.through(ticket_id=ticket.pk, tag_id=pk) for pk in sorted(tag_ids)])
    params = {"source": source}
    if rule:
        params.update(rule=rule.name, words="、".join(verdict.matched))
    created = timeline_event_add(
        ticket=ticket, kind=EventKind.CREATED, actor=actor,
        actor_label=_actor_label(actor, customer.name if customer else ""),
        code="ticket.created_by_rule" if rule else "ticket.created", params=params, is_public=True,
    )
    # Its notifications and those of the first node (the workflow starts in ticket_created)
    # are written together: one INSERT.
    with emits_held(tenant=tenant):
        # The occurrence is the event just written (what event_emit would look up).
        event_emit(tenant=tenant, event="ticket_created", ticket=ticket, actor=actor, occurrence=str(created.pk))
        ticket_created(ticket=ticket, actor=actor)  # upper apps: the workflow starts here
    return ticket


# --- edits ------------------------------------------------------------------------------

@transaction.atomic
def ticket_data_update(*, ticket, actor, data, files=None):
    """Staff edit of the custom fields: validates like intake (partially), records old → new."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    version_fields = ticket.template_version.fields
    cleaned, files_to_store = schema.data_clean(version_fields, data, audience="staff", files=files, partial=True,
                                                current=ticket.data)
    labels = {f["key"]: f for f in version_fields}
    changes = []
    new_data = dict(ticket.data)
    for key, value in cleaned.items():
        if key not in data and labels.get(key, {}).get("type") != "computed":
            continue
        if new_data.get(key) != value:
            changes.append({"field": key, "label": labels[key].get("label") or key,
                            "old": schema.display_value(labels[key], new_data.get(key)),
                            "new": schema.display_value(labels[key], value)})
            new_data[key] = value
    if files_to_store:
        for key, items in attachments_store(
            ticket=ticket, files_to_store=files_to_store, actor=actor, is_public=False
        ).items():
            new_data[key] = list(new_data.get(key) or []) + items
            changes.append({"field": key, "label": labels[key].get("label") or key, "old": "",
                            "new": "、".join(i["name"] for i in items)})
    if not changes:
        return ticket
    ticket.data = new_data
    ticket.save(update_fields=["data", "updated_at"])
    timeline_event_add(ticket=ticket, kind=EventKind.CHANGED, actor=actor, changes=changes)
    return ticket


@transaction.atomic
def ticket_comment_add(*, ticket, body, actor=None, actor_label="", is_public=False, files=(), notify=True):
    """A comment (internal or visible to the customer), optionally with files."""
    body = (body or "").strip()
    if not body and not files:
        raise ValidationError({"body": _("Write a comment or attach a file.")})
    if len(body) > 10000:
        raise ValidationError({"body": _("Ensure this value has at most %(n)d characters.") % {"n": 10000}})
    files = list(files)
    for upload in files:
        schema.upload_check(upload, kind="file")
    event = timeline_event_add(
        ticket=ticket, kind=EventKind.COMMENT, actor=actor, actor_label=actor_label, message=body,
        is_public=is_public,
    )
    for upload in files:
        attachment_store(ticket=ticket, upload=upload, is_public=is_public, actor=actor, event=event)
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now())
    if notify:
        event_emit(tenant=ticket.tenant, event="ticket_commented", ticket=ticket, actor=actor,
                   context={"comment": body, "public": is_public})
    comment_added(ticket=ticket, event=event)  # upper apps: the quality score is recomputed there
    return event


@transaction.atomic
def ticket_engineer_depart(*, ticket, actor, eta):
    """The engineer sets off: a public timeline line and the customer's "on the way" message
    with the expected arrival time."""
    if not ticket.is_open:
        raise ValidationError({"eta": _("Only an open ticket can be visited.")})
    eta_text = timezone.localtime(eta).strftime("%Y-%m-%d %H:%M")
    event = timeline_event_add(ticket=ticket, kind=EventKind.CHANGED, actor=actor, is_public=True,
                               code="ticket.on_the_way", params={"name": _actor_label(actor), "eta": eta_text})
    event_emit(tenant=ticket.tenant, event="engineer_on_the_way", ticket=ticket, actor=actor,
               context={"eta": eta_text, "assignee_name": _actor_label(actor)}, occurrence=f"e{event.pk}")
    return event


# --- split and merge --------------------------------------------------------------------

@transaction.atomic
def ticket_split(*, ticket, actor, parts):
    """Split a ticket into child tickets (e.g. 安装 and 维修 of one visit). `parts` is a list of
    {"title", "template" (optional), "description"}; children copy customer, store and data
    their template knows."""
    if not parts:
        raise ValidationError({"parts": _("Give at least one child ticket.")})
    if len(parts) > 20:
        raise ValidationError({"parts": _("At most 20 child tickets at once.")})
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if not ticket.is_open:
        raise ValidationError({"parts": _("Only an open ticket can be split.")})
    children = []
    for part in parts:
        template = part.get("template") or ticket.template
        if template.tenant_id != ticket.tenant_id:
            raise ValidationError({"template": invalid_choice()})
        version = template.current_version
        if version is None:
            raise ValidationError({"template": _("This template is not published.")})
        keys = {f["key"] for f in version.fields}
        child = Ticket.objects.create(
            tenant_id=ticket.tenant_id, number=ticket_number_next(tenant=ticket.tenant, prefix=template.number_prefix),
            template=template, template_version=version, category_id=template.category_id,
            title=(part.get("title") or ticket.title)[:MAX_TITLE], description=part.get("description", ""),
            priority=ticket.priority, source=ticket.source, customer=ticket.customer, opportunity=ticket.opportunity,
            region=ticket.region, store=ticket.store, created_by=actor, parent=ticket,
            tracking_token=tracking_token_new(ticket.tenant_id),
            data={k: v for k, v in ticket.data.items() if k in keys},
        )
        timeline_event_add(
            ticket=child, kind=EventKind.SPLIT, actor=actor, is_public=True,
            code="ticket.split_from", params={"number": ticket.number},
        )
        children.append(child)
        ticket_created(ticket=child, actor=actor)
    timeline_event_add(
        ticket=ticket, kind=EventKind.SPLIT, actor=actor, is_public=True,
        code="ticket.split_into", params={"numbers": "、".join(c.number for c in children)},
    )
    return children
