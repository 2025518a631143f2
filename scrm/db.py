"""Database helpers the services share: writes that Django's ORM spells in more round trips
than the database needs, and the one-row reads every intake makes, where building the ORM query
costs several times what running it does. On PostgreSQL their statements are prepared once per
connection (DB_PREPARED_STATEMENTS)."""

import hashlib

from django.conf import settings
from django.db import connection
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django_scopes import ScopeError, get_scope

_plans = {}


@receiver(connection_created)
def _forget_prepared(sender, connection, **kwargs):
    # Prepared statements live as long as the server session: a new connection has none yet.
    on = connection.vendor == "postgresql" and settings.DB_PREPARED_STATEMENTS
    connection.scrm_prepared = set() if on else None


_statements = {}
# A statement with more parameters (a bulk insert's one-off shape) is not worth a plan kept for
# the connection's life.
MAX_PREPARED_PARAMS = 200


def _statement(sql, count):
    """(name, EXECUTE …) of a statement with `count` parameters, computed once."""
    try:
        return _statements[sql]
    except KeyError:
        name = "scrm_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:20]
        run = f"EXECUTE {name} ({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"
        found = _statements[sql] = (name, run)
        return found


def execute(cursor, sql, params):
    """Run one statement of the intake's path (this module's, ticket numbering's). On PostgreSQL
    with DB_PREPARED_STATEMENTS on, as a prepared statement of this connection: PREPARE on first
    use, EXECUTE after, so the server plans it once instead of on every intake (psycopg2
    prepares nothing itself). A statement stays prepared through rollbacks; a new connection
    starts afresh. Turn the setting off behind a pooler that runs one client's statements on
    other server sessions (PgBouncer in transaction mode)."""
    prepared = cursor.db.__dict__.get("scrm_prepared")
    if prepared is None or len(params) > MAX_PREPARED_PARAMS:
        cursor.execute(sql, params)
        return
    name, execute_sql = _statement(sql, len(params))
    if name not in prepared:
        pieces = sql.split("%s")
        numbered = "".join(piece + (f"${i}" if i < len(pieces) else "") for i, piece in enumerate(pieces, 1))
        # On the DB-API cursor: once per connection, like the session's setup, not one of the
        # statements a request makes (query counts and logs show the EXECUTE).
        with cursor.db.wrap_database_errors:
            cursor.cursor.execute(f"PREPARE {name} AS {numbered.replace('%%', '%')}")
        prepared.add(name)
    cursor.execute(execute_sql, params)


def _plan(build, model):
    """What `build(opts, quote_name)` makes of a model's metadata: once per model and database."""
    key = (build, model, connection.alias)
    try:
        return _plans[key]
    except KeyError:
        plan = _plans[key] = build(model._meta, connection.ops.quote_name)
        return plan


def _tenant_owned(model):
    # A ScopedManager (TenantOwned): reads are filtered by the open scope, writes checked against it.
    return hasattr(model._default_manager, "with_scopes_disabled")


def _select_plan(opts, quote):
    """(SELECT … FROM table, attnames, converters, tenant column or None)."""
    fields = opts.concrete_fields
    converters = []
    for i, field in enumerate(fields):
        # The converters the ORM's compiler would apply to this column (JSON text, SQLite's
        # datetimes and UUIDs …), so an instance built here equals one the ORM loads.
        col = field.get_col(opts.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((i, found, col))
    return (
        f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(opts.db_table)}",  # noqa: S608
        [f.attname for f in fields], converters,
        quote(opts.get_field("tenant").column) if _tenant_owned(opts.model) else None,
    )


def _scope_condition(tenant_column):
    ids = scope_tenant_ids()
    if ids is None:  # the greppable escape hatch is open: every tenant, as the manager
        return "", []
    return f"{tenant_column} IN ({', '.join(['%s'] * len(ids))}) AND ", sorted(ids)


def row_get(model, where, params):
    """The one row of `model` that `where` matches, as an instance, or None; raises
    MultipleObjectsReturned for two. `where` is SQL over the model's own columns with %s
    placeholders and no user input in it (a unique key's condition, e.g. "slug = %s"). A
    tenant-owned model is filtered by the open scope and refuses to run without one, like its
    manager. For lookups that every intake makes: the ORM spends several times longer building
    such a query than the database spends running it."""
    select, attnames, converters, tenant_column = _plan(_select_plan, model)
    if tenant_column is not None:
        scope_sql, scope_params = _scope_condition(tenant_column)
        where, params = f"{scope_sql}({where})", [*scope_params, *params]
    with connection.cursor() as cursor:
        execute(cursor, f"{select} WHERE {where} LIMIT 2", params)
        rows = cursor.fetchall()
    if not rows:
        return None
    if len(rows) > 1:
        raise model.MultipleObjectsReturned(f"{model.__name__}: more than one row for {where}")
    values = list(rows[0])
    for i, found, col in converters:
        for convert in found:
            values[i] = convert(values[i], col, connection)
    return model.from_db(connection.alias, attnames, values)


def _insert_plan(opts, quote):
    """(fields written, "INSERT INTO table (columns) VALUES ", "(%s, …)")."""
    fields = [f for f in opts.concrete_fields if f is not opts.auto_field and not getattr(f, "generated", False)]
    return (
        fields,
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES ",  # noqa: S608
        f"({', '.join(['%s'] * len(fields))})",
    )


def _insert_values(rows, fields):
    """The parameters of the rows, prepared as the ORM's insert prepares them (auto_now(_add)
    stamped on the instance, foreign keys checked as saved, JSON adapted), after checking that
    a tenant-owned row belongs to the open scope's tenant: nothing here reads through a
    manager that would refuse a foreign row."""
    model = type(rows[0])
    allowed = scope_tenant_ids() if _tenant_owned(model) else None
    params = []
    for row in rows:
        if allowed is not None and row.tenant_id not in allowed:
            raise ValueError(f"{model.__name__} of tenant {row.tenant_id} written in the scope of {allowed}")
        row._prepare_related_fields_for_save(operation_name="save")
        params.extend(f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields)
    return params


def scope_tenant_ids():
    """The tenant ids the open scope allows, or None with scopes switched off."""
    current = get_scope()
    if not current.get("_enabled", True):
        return None
    if "tenant" not in current:
        raise ScopeError("A scope on dimension(s) tenant needs to be active for this query.")
    tenant = current["tenant"]
    return {getattr(t, "pk", t) for t in (tenant if isinstance(tenant, list | tuple) else [tenant])}


def _saved(row, pk):
    row.pk = pk
    row._state.adding, row._state.db = False, connection.alias


def insert_rows(rows):
    """Insert new model instances of one model in one statement (`INSERT … VALUES …, …
    RETURNING id`) and set their pks: what `save()` or `bulk_create` does for new rows, without
    compiling the query each time. Pks come back in the order of the rows, as bulk_create
    relies on too. No save or m2m signals are sent: use it for models nothing listens to (the
    ticket, its timeline events, its tag links)."""
    if not rows:
        return rows
    if not connection.features.can_return_rows_from_bulk_insert:
        for row in rows:
            row.save(force_insert=True)
        return rows
    model = type(rows[0])
    fields, head, values = _plan(_insert_plan, model)
    params = _insert_values(rows, fields)
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        execute(cursor, f"{head}{', '.join([values] * len(rows))} RETURNING {pk_column}", params)
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            _saved(row, pk)
    return rows


def row_insert(row):
    """insert_rows for one row; returns it."""
    return insert_rows([row])[0]


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
    fields, head, values = _plan(_insert_plan, model)
    params = _insert_values(rows, fields)
    quote = connection.ops.quote_name
    returning = quote(model._meta.pk.column) + (f", {quote(model._meta.get_field(key).column)}" if key else "")
    with connection.cursor() as cursor:
        execute(cursor, f"{head}{', '.join([values] * len(rows))} ON CONFLICT DO NOTHING RETURNING {returning}",
                 params)
        returned = cursor.fetchall()
    if key is None:
        if returned:
            _saved(rows[0], returned[0][0])
        return rows if returned else []
    pks = {value: pk for pk, value in returned}
    inserted = [row for row in rows if getattr(row, key) in pks]
    for row in inserted:
        _saved(row, pks[getattr(row, key)])
    return inserted
