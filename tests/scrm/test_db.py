"""scrm.db, the two statements the ORM cannot say: insert_new, one INSERT … ON CONFLICT DO
NOTHING RETURNING that reports which rows went in, so a refused duplicate needs no savepoint to
keep the caller's transaction usable; and counter_increment, one UPDATE … RETURNING that bumps
and reads a counter under its row lock. Both check the tenant scope, refuse models that have
save receivers, and call no underscore-prefixed Django internal."""

import ast
import datetime
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django_scopes import ScopeError

import scrm.db
from scrm.db import counter_increment, insert_new
from scrm.models import Customer, Opportunity, Tag
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory
from tickets.models import TicketNumberSequence

DAY = datetime.date(2026, 12, 7)


def _fields(obj):
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_one_new_row_goes_in_with_its_pk_in_one_statement(scope_a):
    customer = Customer(tenant=scope_a, name="陈静", phone="13912345678")
    with CaptureQueriesContext(connection) as captured:
        inserted = insert_new([customer])
    assert inserted == [customer]
    assert customer.pk is not None and not customer._state.adding
    assert Customer.objects.get(pk=customer.pk).name == "陈静"
    assert len(captured.captured_queries) == 1
    assert "SAVEPOINT" not in captured.captured_queries[0]["sql"]


def test_a_refused_row_returns_nothing_writes_nothing_and_the_transaction_goes_on(scope_a):
    CustomerFactory(tenant=scope_a, name="老张", phone="13800138000")
    duplicate = Customer(tenant=scope_a, name="新张", phone="13800138000")
    with transaction.atomic():
        assert insert_new([duplicate]) == []
        assert duplicate.pk is None and duplicate._state.adding
        assert Customer.objects.filter(phone="13800138000").get().name == "老张"  # still usable
    assert Customer.objects.count() == 1


def test_several_rows_are_matched_to_their_pks_by_key(scope_a):
    Tag.objects.create(tenant=scope_a, name="已有")
    rows = [Tag(tenant=scope_a, name=name) for name in ("退款", "已有", "加急")]
    inserted = insert_new(rows, key="name")
    assert [t.name for t in inserted] == ["退款", "加急"]
    stored = dict(Tag.objects.filter(name__in=["退款", "加急"]).values_list("pk", "name"))
    assert {t.pk: t.name for t in inserted} == stored
    assert rows[1].pk is None


def test_several_rows_without_a_key_are_refused_before_any_write(scope_a):
    with pytest.raises(ValueError, match="needs `key`"):
        insert_new([Tag(tenant=scope_a, name="甲"), Tag(tenant=scope_a, name="乙")])
    assert Tag.objects.count() == 0


def test_no_rows_is_no_statement(scope_a):
    with CaptureQueriesContext(connection) as captured:
        assert insert_new([]) == []
    assert captured.captured_queries == []


def test_insert_new_refuses_a_row_of_another_tenant(tenant_a, tenant_b):
    with tenant_scope(tenant_b), pytest.raises(ValueError):
        insert_new([Tag(tenant=tenant_a, name="退款")])
    with tenant_scope(tenant_a):
        assert Tag.objects.count() == 0


def test_insert_new_writes_what_save_writes(scope_a):
    customer = Customer(tenant=scope_a, name="王芳", phone="13700001111", note="老客户")
    assert insert_new([customer]) == [customer]
    assert customer.created_at is not None  # auto_now_add stamped on the instance, as save() does
    assert _fields(Customer.objects.get(pk=customer.pk)) == _fields(customer)


def test_insert_new_refuses_an_unsaved_related_row_and_writes_nothing(scope_a):
    unsaved = Customer(tenant=scope_a, name="王芳", phone="13700001111")
    with pytest.raises(ValueError, match="unsaved related object"):
        insert_new([Opportunity(tenant=scope_a, customer=unsaved, title="团餐")])
    assert Opportunity.objects.count() == 0


def test_insert_new_refuses_rows_outside_the_scope(tenant_a):
    with pytest.raises(ScopeError):
        insert_new([Tag(tenant=tenant_a, name="退款")])
    with tenant_scope(tenant_a):
        assert Tag.objects.count() == 0


@pytest.mark.parametrize("signal", [pre_save, post_save], ids=["pre_save", "post_save"])
def test_insert_new_refuses_a_model_with_save_receivers_and_writes_nothing(scope_a, signal):
    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append(instance)

    signal.connect(receiver, sender=Tag, dispatch_uid="test-insert-new-refuses")
    try:
        with CaptureQueriesContext(connection) as captured, pytest.raises(TypeError, match="Tag has receivers"):
            insert_new([Tag(tenant=scope_a, name="退款")])
    finally:
        signal.disconnect(sender=Tag, dispatch_uid="test-insert-new-refuses")
    assert captured.captured_queries == [] and heard == []
    assert Tag.objects.count() == 0


# --- counter_increment ------------------------------------------------------------------

def _counter(tenant, last_value=0, prefix="WX"):
    return TicketNumberSequence.objects.create(tenant=tenant, prefix=prefix, day=DAY, last_value=last_value)


def test_counter_increment_adds_one_and_returns_it_in_one_statement(scope_a):
    counter = _counter(scope_a, last_value=41)
    _counter(scope_a, last_value=7, prefix="TS")
    with CaptureQueriesContext(connection) as captured:
        assert counter_increment(TicketNumberSequence, field="last_value", tenant=scope_a.pk, prefix="WX",
                                 day=DAY) == 42
    assert len(captured.captured_queries) == 1
    assert captured.captured_queries[0]["sql"].startswith("UPDATE")
    counter.refresh_from_db()
    assert counter.last_value == 42
    assert TicketNumberSequence.objects.get(prefix="TS").last_value == 7


def test_counter_increment_without_returning_locks_reads_and_updates(scope_a, monkeypatch):
    # A database without UPDATE … RETURNING (MySQL): SELECT … FOR UPDATE, then update(F + 1).
    _counter(scope_a, last_value=9)
    monkeypatch.setattr(connection, "vendor", "mysql")
    with CaptureQueriesContext(connection) as captured:
        assert counter_increment(TicketNumberSequence, field="last_value", tenant=scope_a.pk, prefix="WX",
                                 day=DAY) == 10
        assert counter_increment(TicketNumberSequence, field="last_value", tenant=scope_a.pk, prefix="TS",
                                 day=DAY) is None
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["SELECT", "UPDATE", "SELECT"]
    assert TicketNumberSequence.objects.get(prefix="WX").last_value == 10


def test_counter_increment_answers_none_without_a_row(scope_a):
    assert counter_increment(TicketNumberSequence, field="last_value", tenant=scope_a.pk, prefix="WX",
                             day=DAY) is None
    assert TicketNumberSequence.objects.count() == 0


def test_counter_increment_refuses_another_tenants_counter_and_changes_nothing(tenant_a, tenant_b):
    with tenant_scope(tenant_a):
        counter = _counter(tenant_a, last_value=5)
    with tenant_scope(tenant_b), pytest.raises(ValueError, match="scope"):
        counter_increment(TicketNumberSequence, field="last_value", tenant=tenant_a.pk, prefix="WX", day=DAY)
    with tenant_scope(tenant_b), pytest.raises(ValueError, match="needs the tenant"):
        counter_increment(TicketNumberSequence, field="last_value", prefix="WX", day=DAY)
    with pytest.raises(ScopeError):
        counter_increment(TicketNumberSequence, field="last_value", tenant=tenant_a.pk, prefix="WX", day=DAY)
    with tenant_scope(tenant_a):
        counter.refresh_from_db()
    assert counter.last_value == 5


def test_counter_increment_refuses_a_model_with_save_receivers(scope_a):
    counter = _counter(scope_a, last_value=5)
    post_save.connect(lambda **kwargs: None, sender=TicketNumberSequence, weak=False,
                      dispatch_uid="test-counter-refuses")
    try:
        with pytest.raises(TypeError, match="TicketNumberSequence has receivers"):
            counter_increment(TicketNumberSequence, field="last_value", tenant=scope_a.pk, prefix="WX", day=DAY)
    finally:
        post_save.disconnect(sender=TicketNumberSequence, dispatch_uid="test-counter-refuses")
    counter.refresh_from_db()
    assert counter.last_value == 5


def test_the_module_calls_no_underscore_prefixed_django_internals():
    # _meta and _state are the documented model API; everything else with a leading underscore
    # that is not this module's own is Django's private code.
    tree = ast.parse(Path(scrm.db.__file__).read_text())
    own = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    private = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and node.attr.startswith("_") and not node.attr.startswith("__")}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id.startswith("_")}
    assert private - {"_meta", "_state"} == set()
    assert names - own == set()
    assert "PREPARE" not in Path(scrm.db.__file__).read_text()
