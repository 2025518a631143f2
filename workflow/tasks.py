"""Celery tasks of the workflow: deliver a webhook node's signed payload, with retries; the SLA
sweep (beat, every minute); the daily digest of SLA breaches to regional managers (beat, daily)."""

import requests
from celery import shared_task
from django_scopes import scope, scopes_disabled

from scrm.models import Tenant
from scrm.netguard import safe_post
from scrm.tasks import tenant_task

from .actions import webhook_body, webhook_signature
from .models import Run
from .sla_digest import sla_breach_digest_send
from .sla_sweep import sla_sweep


@tenant_task(name="workflow.webhook_deliver", autoretry_for=(requests.RequestException,), retry_backoff=True,
             retry_kwargs={"max_retries": 5})
def webhook_deliver_task(*, tenant_id, ticket_id, node_key):
    run = Run.objects.select_related("ticket", "version").get(ticket_id=ticket_id)
    node = next(n for n in run.version.graph["nodes"] if n["key"] == node_key)
    params = node.get("params") or {}
    body = webhook_body(run.ticket, node)
    headers = {"Content-Type": "application/json",
               "X-SCRM-Signature": "sha256=" + webhook_signature(params.get("secret", ""), body)}
    # Checked again here: DNS may answer differently than when the node was saved. A refused URL
    # raises UnsafeURL (not retried); a redirect is not followed, and counts as a failure.
    response = safe_post(params["url"], data=body, headers=headers, timeout=5)
    if response.is_redirect:
        raise requests.HTTPError(f"redirect to {response.headers.get('Location', '')!r} not followed",
                                 response=response)
    response.raise_for_status()
    return response.status_code


@shared_task(name="workflow.sla_sweep", ignore_result=True)
def sla_sweep_task():
    # System sweep across tenants (DESIGN.md rule 1): the due timers are read unscoped, and
    # each batch is fired inside its tenants' own scopes (workflow.sla_sweep.batch_fire).
    with scopes_disabled():
        return dict(sla_sweep())


@shared_task(name="workflow.sla_breach_digest", ignore_result=True)
def sla_breach_digest_task():
    # One scope per tenant; a rerun the same day writes nothing (the outbox key names the day).
    with scopes_disabled():
        tenants = list(Tenant.objects.filter(is_active=True).order_by("pk"))
    sent = {}
    for tenant in tenants:
        with scope(tenant=tenant.pk):
            sent[tenant.pk] = sla_breach_digest_send(tenant=tenant)
    return sent
