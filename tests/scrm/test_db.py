"""scrm.db.insert_new: one INSERT … ON CONFLICT DO NOTHING RETURNING that reports which rows went in,
so a refused duplicate needs no savepoint to keep the caller's transaction usable."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from scrm.db import insert_new
from scrm.models import Customer, Tag
from tests.factories import CustomerFactory


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
