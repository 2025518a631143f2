"""scrm.db: insert_new, one INSERT … ON CONFLICT DO NOTHING RETURNING that reports which rows
went in, so a refused duplicate needs no savepoint to keep the caller's transaction usable; and
row_get and row_insert, the one-row read by a unique key and the one-row INSERT that intake makes
without compiling an ORM query."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_scopes import ScopeError, scopes_disabled

from scrm.db import insert_new, insert_rows, row_get, row_insert
from scrm.models import Customer, Tag, Tenant
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory
from tickets.models import Ticket


def _fields(obj):
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_row_get_builds_the_instance_the_orm_would_in_one_statement(tenant_a):
    tenant_a.settings = {"public_form": {"rate": 30}, "名称": "江南"}
    tenant_a.save()
    with CaptureQueriesContext(connection) as captured:
        found = row_get(Tenant, "slug = %s AND is_active", ["weidao"])
    assert len(captured.captured_queries) == 1
    # JSON decoded, the UUID stamp and the aware datetime converted as the ORM converts them.
    assert _fields(found) == _fields(Tenant.objects.get(pk=tenant_a.pk))
    assert found.settings["名称"] == "江南"
    assert not found._state.adding and found._state.db == "default"


def test_row_get_answers_none_when_nothing_matches(tenant_a):
    tenant_a.is_active = False
    tenant_a.save()
    assert row_get(Tenant, "slug = %s AND is_active", ["weidao"]) is None
    assert row_get(Tenant, "slug = %s AND is_active", ["nobody"]) is None


def test_row_get_refuses_two_rows(tenant_a, tenant_b):
    with pytest.raises(Tenant.MultipleObjectsReturned):
        row_get(Tenant, "is_active", [])


def test_row_get_reads_only_the_scoped_tenants_rows(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        CustomerFactory(tenant=tenant_b, name="乙", phone="13800138000")
    with tenant_scope(tenant_a):
        assert row_get(Customer, "phone = %s", ["13800138000"]) is None
        mine = CustomerFactory(tenant=tenant_a, name="甲", phone="13800138000")
        found = row_get(Customer, "phone = %s", ["13800138000"])
        assert found.pk == mine.pk and _fields(found) == _fields(Customer.objects.get(pk=mine.pk))
    with tenant_scope([tenant_a, tenant_b]), pytest.raises(Customer.MultipleObjectsReturned):
        row_get(Customer, "phone = %s", ["13800138000"])
    with scopes_disabled():
        assert row_get(Customer, "name = %s", ["乙"]).tenant_id == tenant_b.pk


def test_row_get_of_a_tenant_owned_model_refuses_to_run_unscoped(tenant_a):
    with tenant_scope(tenant_a):
        CustomerFactory(tenant=tenant_a, phone="13800138000")
    with CaptureQueriesContext(connection) as captured, pytest.raises(ScopeError):
        row_get(Customer, "phone = %s", ["13800138000"])
    assert captured.captured_queries == []


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


def test_row_insert_writes_what_save_writes_in_one_statement(scope_a):
    customer = Customer(tenant=scope_a, name="王芳", phone="13700001111", note="老客户")
    with CaptureQueriesContext(connection) as captured:
        assert row_insert(customer) is customer
    assert len(captured.captured_queries) == 1
    assert customer.pk is not None and not customer._state.adding
    assert customer.created_at is not None  # auto_now_add stamped on the instance, as save() does
    assert _fields(Customer.objects.get(pk=customer.pk)) == _fields(customer)


def test_row_insert_refuses_a_row_of_another_tenant_and_writes_nothing(tenant_a, tenant_b):
    with tenant_scope(tenant_b), CaptureQueriesContext(connection) as captured, pytest.raises(ValueError):
        row_insert(Customer(tenant=tenant_a, name="王芳", phone="13700001111"))
    assert captured.captured_queries == []
    with pytest.raises(ScopeError):
        row_insert(Customer(tenant=tenant_a, name="王芳", phone="13700001111"))
    with tenant_scope(tenant_a):
        assert Customer.objects.count() == 0


def test_row_insert_refuses_an_unsaved_related_row(scope_a):
    store_less = Customer(tenant=scope_a, name="王芳", phone="13700001111")
    with pytest.raises(ValueError, match="unsaved related object"):
        row_insert(Ticket(tenant=scope_a, number="X-1", title="t", customer=store_less))
    assert Ticket.objects.count() == 0


def test_insert_new_refuses_a_row_of_another_tenant(tenant_a, tenant_b):
    with tenant_scope(tenant_b), pytest.raises(ValueError):
        insert_new([Tag(tenant=tenant_a, name="退款")])
    with tenant_scope(tenant_a):
        assert Tag.objects.count() == 0


def test_insert_rows_sets_each_rows_pk_in_order_in_one_statement(scope_a):
    rows = [Tag(tenant=scope_a, name=name) for name in ("退款", "加急", "团购客户")]
    with CaptureQueriesContext(connection) as captured:
        assert insert_rows(rows) is rows
    assert len(captured.captured_queries) == 1
    assert {t.pk: t.name for t in rows} == dict(Tag.objects.values_list("pk", "name"))
    assert insert_rows([]) == []


def test_insert_rows_lets_a_unique_constraint_refuse_and_writes_nothing(scope_a):
    Tag.objects.create(tenant=scope_a, name="退款")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows([Tag(tenant=scope_a, name="加急"), Tag(tenant=scope_a, name="退款")])
    assert list(Tag.objects.values_list("name", flat=True)) == ["退款"]
