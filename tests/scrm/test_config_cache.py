"""The per-tenant configuration cache (scrm.config_cache) that intake reads: every watched change
replaces the tenant's stamp, the next read after it sees the change, pinned blocks read the stamp
once, a rolled-back change leaves nothing stale, and tenants never see each other's entries."""

import pytest
from django.db import transaction
from django_scopes import scopes_disabled

from notifications.models import Notification
from notifications.services import notification_template_save
from scrm.config_cache import config_pinned, scoped_tenant_id, tenant_config
from scrm.models import Tenant
from scrm.services import customer_create
from scrm.tenancy import tenant_scope
from tests.factories import RegionFactory, StoreFactory, published_template
from tickets.models import Priority, Source
from tickets.selectors import classification_rules, template_active_get, template_public_get
from tickets.services import (
    category_get_or_create,
    classification_rule_save,
    template_from_preset,
    template_update,
    ticket_intake,
)
from workflow.services import workflow_from_preset

pytestmark = pytest.mark.django_db


def stamp(tenant):
    return Tenant.objects.get(pk=tenant.pk).config_stamp


def _rule(tenant, **kwargs):
    return classification_rule_save(tenant=tenant, **{"name": "退款", "keywords": ["退款"],
                                                      "set_priority": Priority.URGENT, **kwargs})


CHANGES = {
    "region": lambda t: RegionFactory(tenant=t),
    "store": lambda t: StoreFactory(tenant=t, region=RegionFactory(tenant=t)),
    "category": lambda t: category_get_or_create(tenant=t, code="repair", name="维修"),
    "template": lambda t: published_template(t),
    "rule": lambda t: _rule(t),
    "notification template": lambda t: notification_template_save(
        tenant=t, event="ticket_created", channel="sms", language="zh-hans",
        body="您的工单{{ ticket_number }}已受理", sms_template_code="SMS_100"),
    "workflow": lambda t: workflow_from_preset(
        template=template_from_preset(tenant=t, preset_slug="canyin_tousu"), preset_slug="canyin_tousu"),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_watched_changes_replace_the_stamp(scope_a, change):
    before = stamp(scope_a)
    change(scope_a)
    assert stamp(scope_a) != before


def test_edits_and_deletes_replace_the_stamp_too(scope_a):
    store = StoreFactory(tenant=scope_a, region=RegionFactory(tenant=scope_a))
    rule = _rule(scope_a)
    for change in (lambda: setattr(store, "name", "新店名") or store.save(),
                   lambda: _rule(scope_a, rule=rule, tag_names=["退款"]),  # the rule's tags (many-to-many)
                   lambda: rule.delete(),
                   lambda: store.delete()):
        before = stamp(scope_a)
        change()
        assert stamp(scope_a) != before


def test_tickets_and_customers_leave_the_stamp_alone(scope_a):
    """Intake writes no configuration: it must not invalidate what it just cached."""
    template = published_template(scope_a)
    before = stamp(scope_a)
    customer_create(tenant=scope_a, name="王芳", phone="13912345678")
    ticket_intake(tenant=scope_a, source=Source.WEB, template=template, audience="public",
                  data={"order_no": "A1"}, contact={"name": "李雷", "phone": "13800138000"})
    assert stamp(scope_a) == before


def test_a_new_rule_applies_to_the_next_ticket(scope_a):
    template = published_template(scope_a)
    assert classification_rules() == ()
    rule = _rule(scope_a)
    assert [r.name for r in classification_rules()] == ["退款"]
    ticket = ticket_intake(tenant=scope_a, source=Source.WEB, template=template, audience="public",
                           data={"order_no": "A1"}, description="我要退款", contact={"phone": "13800138000"})
    assert ticket.priority == Priority.URGENT
    _rule(scope_a, rule=rule, is_active=False)
    assert classification_rules() == ()


def test_reads_are_served_from_the_cache_until_a_change(scope_a, django_assert_num_queries):
    _rule(scope_a)
    classification_rules()
    with django_assert_num_queries(1):  # the stamp only
        assert len(classification_rules()) == 1
    with config_pinned(scope_a), django_assert_num_queries(0):
        assert len(classification_rules()) == 1
    with config_pinned(scope_a, stamp=Tenant.objects.get(pk=scope_a.pk).config_stamp), \
            django_assert_num_queries(0):
        assert len(classification_rules()) == 1


def test_a_change_inside_a_pinned_block_is_seen_at_once(scope_a):
    with config_pinned(scope_a):
        assert classification_rules() == ()
        _rule(scope_a)
        assert [r.name for r in classification_rules()] == ["退款"]


def test_a_rolled_back_change_leaves_nothing_stale(scope_a):
    with pytest.raises(RuntimeError), transaction.atomic():
        _rule(scope_a)
        assert len(classification_rules()) == 1  # the transaction sees (and caches) its own rule
        raise RuntimeError("abandon")
    assert classification_rules() == ()


def test_a_stale_tenant_instance_does_not_hide_a_change(scope_a):
    """The stamp is read from the database, not from the (possibly old) Tenant object."""
    stale = Tenant.objects.get(pk=scope_a.pk)
    assert classification_rules() == ()
    _rule(scope_a)
    assert [r.name for r in tenant_config(stale).get("classification_rules", classification_rules)] == ["退款"]


def test_public_template_follows_unpublishing_and_misses_are_not_kept(scope_a):
    template = published_template(scope_a, slug="dinner")
    assert template_public_get(slug="dinner").pk == template.pk
    template_update(template=template, is_public=False)
    assert template_public_get(slug="dinner") is None
    assert template_public_get(slug="no-such-form") is None
    assert "public_template:no-such-form" not in tenant_config().values
    template_update(template=template, is_public=True)
    assert template_public_get(slug="dinner").pk == template.pk


def test_the_apis_template_is_any_active_one_and_follows_deactivation(scope_a, django_assert_num_queries):
    template = published_template(scope_a, slug="internal")
    template_update(template=template, is_public=False)
    assert template_active_get(slug="internal").pk == template.pk  # not public: the API still files
    with django_assert_num_queries(1):  # the stamp only; the template comes from the cache
        assert template_active_get(slug="internal").current_version_id == template.current_version_id
    template_update(template=template, is_active=False)
    assert template_active_get(slug="internal") is None
    assert "active_template:internal" not in tenant_config().values


def test_tenants_never_share_entries(tenant_a, tenant_b):
    with tenant_scope(tenant_a):
        mine = published_template(tenant_a, slug="dinner", name="餐饮投诉")
        _rule(tenant_a)
    with tenant_scope(tenant_b):
        theirs = published_template(tenant_b, slug="dinner", name="家电投诉")
    with tenant_scope(tenant_a):
        assert template_public_get(slug="dinner").pk == mine.pk
        assert len(classification_rules()) == 1
    with tenant_scope(tenant_b):
        assert template_public_get(slug="dinner").pk == theirs.pk
        assert classification_rules() == ()


def test_a_saved_message_template_is_used_by_the_next_event(scope_a):
    template = published_template(scope_a)

    def intake(order_no):
        ticket = ticket_intake(tenant=scope_a, source=Source.WEB, template=template, audience="public",
                               data={"order_no": order_no}, contact={"phone": "13800138000"})
        return Notification.objects.get(ticket=ticket, customer__isnull=False)

    assert "自定义" not in intake("A1").body
    notification_template_save(tenant=scope_a, event="ticket_created", channel="sms", language="zh-hans",
                               body="自定义：工单{{ ticket_number }}已受理", sms_template_code="SMS_100")
    assert intake("A2").body.startswith("自定义：工单")


def test_a_workflow_published_later_runs_for_the_next_ticket(scope_a):
    template = template_from_preset(tenant=scope_a, preset_slug="canyin_tousu")
    store = StoreFactory(tenant=scope_a, region=RegionFactory(tenant=scope_a))
    data = {"store": store.pk, "dined_at": "2026-01-02T12:00", "complaint_type": "service",
            "description": "服务员态度很差，点餐半天没人理", "contact_name": "韩梅梅", "contact_phone": "13800138000"}
    first = ticket_intake(tenant=scope_a, source=Source.API, template=template, data=data)
    workflow_from_preset(template=template, preset_slug="canyin_tousu")
    second = ticket_intake(tenant=scope_a, source=Source.API, template=template, data=data)
    assert not hasattr(first, "workflow_run") or first.workflow_run is None
    assert second.workflow_run.version.workflow.template_id == template.pk


def test_cached_reads_refuse_to_run_without_one_tenant_scope(tenant_a):
    with pytest.raises(RuntimeError):
        scoped_tenant_id()
    with scopes_disabled(), pytest.raises(RuntimeError):
        classification_rules()
    with tenant_scope(tenant_a):
        assert scoped_tenant_id() == tenant_a.pk
