"""Database helpers the services share: writes that Django's ORM spells in more round trips
than the database needs."""

from django.db import connection
from django.db.models.constants import OnConflict


def insert_new(rows, *, key=None):
    """Insert model instances of one model, skipping those a unique constraint refuses, in one
    statement: `INSERT … ON CONFLICT DO NOTHING RETURNING` (PostgreSQL, SQLite ≥ 3.35). Returns
    the rows inserted, their pks set and marked as saved; None where the database cannot say in
    one statement which rows it inserted (the caller then saves its own way).

    A refused row raises nothing, so no savepoint is needed to keep the caller's transaction
    usable, and the caller reads the row that won if it wants to name it. With several rows,
    `key` names a unique field that tells which returned pk belongs to which row. Like
    bulk_create, it sends no save signals: use it for models nothing listens to."""
    features = connection.features
    if connection.vendor not in ("postgresql", "sqlite") or not (
        features.supports_ignore_conflicts and features.can_return_rows_from_bulk_insert
    ):
        return None
    if not rows:
        return []
    if len(rows) > 1 and key is None:
        raise ValueError("insert_new needs `key` to match several rows to their pks")
    model = type(rows[0])
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key and not getattr(f, "generated", False)]
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="bulk_create")
    returning = [opts.pk] + ([opts.get_field(key)] if key else [])
    # The default manager: a tenant-owned model's insert still needs its tenant's scope.
    returned = [r for r in model._default_manager._insert(
        rows, fields=fields, returning_fields=returning, on_conflict=OnConflict.IGNORE,
    ) if r]
    if key is None:
        inserted = rows if returned else []
        pks = {None: returned[0][0]} if returned else {}
    else:
        pks = {value: pk for pk, value in returned}
        inserted = [row for row in rows if getattr(row, key) in pks]
    for row in inserted:
        row.pk = pks.pop(getattr(row, key) if key else None)
        row._state.adding, row._state.db = False, connection.alias
    return inserted
