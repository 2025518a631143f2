"""Automatic nodes run registered actions. Other apps add theirs with @workflow_action (spare
parts will reserve stock, settlement will compute lines) without touching the engine."""

import hashlib
import hmac
import json

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext as _

ACTIONS = {}
# name -> func(params) returning an error message or None, checked when a node is saved and when
# a workflow is published.
ACTION_PARAM_CHECKS = {}


def workflow_action(name):
    """Register `func(*, ticket, node, params, actor) -> str` (a line for the timeline)."""

    def register(func):
        ACTIONS[name] = func
        return func

    return register


@workflow_action("set_fields")
def set_fields(*, ticket, node, params, actor):
    from tickets.services import ticket_data_update

    values = params.get("values") or {}
    ticket_data_update(ticket=ticket, actor=actor, data=values)
    return _("Fields set: %(keys)s") % {"keys": "、".join(values)}


@workflow_action("create_child")
def create_child(*, ticket, node, params, actor):
    """A child ticket from `params["template"]` (the parent's template when empty), created the
    way a split child is (tickets.services.ticket_split), so `on_ticket_created` starts the
    child's own workflow in this transaction. A child of the same template that reaches this
    node again would spawn children without end: it stops at the first repeat instead."""
    from tickets.models import TicketTemplate
    from tickets.services import ticket_split

    slug = params.get("template")
    template = ticket.template
    if slug:
        template = TicketTemplate.objects.filter(slug=slug, is_active=True, current_version__isnull=False).first()
        if template is None:
            raise ValidationError(_("The child ticket's template “%(slug)s” does not exist or is not published.")
                                  % {"slug": slug})
    parent = ticket.parent if ticket.parent_id else None
    if parent is not None and template.pk == ticket.template_id == parent.template_id:
        return _("No child ticket: %(number)s is itself a child of this template (it would loop).") % {
            "number": ticket.number}
    children = ticket_split(ticket=ticket, actor=actor, parts=[{"title": params.get("title") or ticket.title,
                                                                "template": template}])
    return _("Child ticket %(number)s created.") % {"number": children[0].number}


def create_child_params_error(params):
    """Why a create_child node cannot be used, or None: a named template must exist and be published."""
    from tickets.models import TicketTemplate

    slug = params.get("template") if isinstance(params, dict) else None
    if slug and not TicketTemplate.objects.filter(slug=slug, is_active=True, current_version__isnull=False).exists():
        return _("The child ticket's template “%(slug)s” does not exist or is not published.") % {"slug": slug}
    return None


ACTION_PARAM_CHECKS["create_child"] = create_child_params_error


def webhook_params_error(params):
    """Why a webhook node's parameters cannot be used, or None: the URL must be http(s) and reach
    a public address (scrm.netguard), so a tenant cannot point the worker at the server's own
    network."""
    from scrm.netguard import UnsafeURL, url_check

    url = params.get("url") if isinstance(params, dict) else None
    try:
        URLValidator(schemes=["http", "https"])(url if isinstance(url, str) else "")
    except ValidationError:
        return _("A webhook needs {\"url\": \"https://…\"}.")
    try:
        url_check(url)
    except UnsafeURL as exc:
        return exc.message
    return None


ACTION_PARAM_CHECKS["webhook"] = webhook_params_error


def action_params_errors(graph):
    """The parameter errors of a graph's automatic nodes, one line per node."""
    errors = []
    for node in graph.get("nodes") or []:
        check = ACTION_PARAM_CHECKS.get(node.get("action")) if node.get("kind") == "auto" else None
        error = check(node.get("params") or {}) if check else None
        if error:
            errors.append(_("Node “%(key)s”: %(error)s") % {"key": node.get("key"), "error": error})
    return errors


def webhook_signature(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(ticket, node):
    return json.dumps({"ticket": ticket.number, "status": ticket.status, "node": node["key"],
                       "data": ticket.data}, ensure_ascii=False, sort_keys=True, default=str).encode()


@workflow_action("webhook")
def webhook(*, ticket, node, params, actor):
    """POST a signed payload after commit (a Celery task with retries does the network call)."""
    url = params.get("url", "")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise ValidationError(_("The webhook URL is not valid.")) from exc
    # Where it points is checked when the node is saved, at publish and by the task at send time
    # (scrm.netguard): a DNS answer here would hold the engine's transaction.
    from .tasks import webhook_deliver_task

    transaction.on_commit(lambda: webhook_deliver_task.delay(
        tenant_id=ticket.tenant_id, ticket_id=ticket.pk, node_key=node["key"]), robust=True)
    return _("Webhook queued to %(url)s.") % {"url": url}
