"""PostgreSQL indexes the ticket pages and reports rely on exist after migrate."""

from django.db import connection


def index_names():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'tickets_ticket'")
        return {row[0] for row in cursor.fetchall()}


def test_gin_and_trigram_indexes_exist(db):
    names = index_names()
    assert {"ticket_data_gin", "ticket_title_trgm", "ticket_tenant_created", "ticket_tenant_status"} <= names


def test_data_containment_filter_uses_the_gin_index(db):
    from tickets.models import Ticket

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            query = Ticket._base_manager.filter(data__contains={"complaint_type": "quality"}).query
            sql, params = query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("SET enable_seqscan = on")
    assert "ticket_data_gin" in plan
