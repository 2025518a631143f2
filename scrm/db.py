"""The statements the ORM cannot say, kept in one place (DESIGN, "Speed without leaving Django"):

- `insert_new(rows, key=)`: `INSERT … ON CONFLICT DO NOTHING RETURNING`, which says which rows
  went in, so a refused duplicate raises nothing and needs no savepoint to keep the caller's
  transaction usable (customers, the outbox). `bulk_create(ignore_conflicts=True)` writes the
  same rows but cannot tell which of them the database refused.
- `counter_increment(model, field=, **where)`: `UPDATE … SET n = n + 1 … RETURNING n`, a counter
  bumped and read in one statement that holds the row lock to the end of the transaction
  (ticket numbers). `update(n=F("n") + 1)` needs a second statement to read the value back.
  `counter_add(model, field=, by=, within=, returning=, **where)` is the general form: add any
  amount, only while the new value stays within another column of the row (stock reserved
  within on hand), and read back the columns the caller needs (spare parts reservations).

Everything else is written and read through the ORM. The INSERT is the ORM's own (its insert
compiler, with the conflict clause and RETURNING bulk_create leaves out), so defaults, `pre_save`
(auto_now) and value preparation are Django's; both run on the model's write database and check
the open tenant scope like a ScopedManager. Neither sends save signals, so both refuse a model
that has pre_save/post_save receivers: such a model is saved through the ORM. Nothing here calls
an underscore-prefixed Django internal (`Model._meta` and `Model._state` are documented API);
nothing is prepared at the SQL level (a pooler in transaction mode cannot carry that)."""

from django.db import connections, router
from django.db.models import F, signals
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django_scopes import ScopeError, get_scope


def _tenant_owned(model):
    from .models import TenantOwned

    return issubclass(model, TenantOwned)


def _scope_tenant_ids():
    """The tenant ids the open scope allows, or None with scopes switched off."""
    current = get_scope()
    if not current.get("_enabled", True):
        return None
    if "tenant" not in current:
        raise ScopeError("A scope on dimension(s) tenant needs to be active for this query.")
    tenant = current["tenant"]
    return {getattr(t, "pk", t) for t in (tenant if isinstance(tenant, list | tuple) else [tenant])}


def _check_in_scope(model, tenant_id):
    allowed = _scope_tenant_ids()
    if allowed is not None and tenant_id not in allowed:
        raise ValueError(f"{model.__name__} of tenant {tenant_id} written in the scope of {sorted(allowed)}")


def _refuse_listened(model, helper):
    """These statements send no save signals: a receiver would silently miss the write."""
    for name, signal in (("pre_save", signals.pre_save), ("post_save", signals.post_save)):
        if signal.has_listeners(model):
            raise TypeError(f"{helper} sends no {name} signal and {model.__name__} has receivers of it: "
                            "write it through the ORM (create/save/bulk_create)")


def _related_saved(row):
    """What save() checks first: a related object assigned before it was saved has a pk now
    (take it) or still none (refuse, rather than write NULL)."""
    for field in row._meta.concrete_fields:
        if not (field.is_relation and field.many_to_one and field.is_cached(row)):
            continue
        obj = field.get_cached_value(row)
        if obj is None:
            continue
        if obj.pk is None:
            raise ValueError(f"{type(row).__name__} refused to prevent data loss due to unsaved related "
                             f"object '{field.name}'.")
        if getattr(row, field.attname) in field.empty_values:
            setattr(row, field.name, obj)


def insert_new(rows, *, key=None):
    """Insert new instances of one model, skipping those a unique constraint refuses, in one
    statement: `INSERT … ON CONFLICT DO NOTHING RETURNING` (PostgreSQL, SQLite ≥ 3.35). Returns
    the rows inserted, their pks set and marked as saved; None where the database cannot say in
    one statement which rows it inserted (the caller then saves its own way).

    A refused row raises nothing, so no savepoint is needed, and the caller reads the row that
    won if it wants to name it. With several rows, `key` names a unique field that tells which
    returned pk belongs to which row. Raises TypeError for a model with save receivers."""
    if not rows:
        return []
    model = type(rows[0])
    _refuse_listened(model, "insert_new")
    alias = router.db_for_write(model, instance=rows[0])
    connection = connections[alias]
    features = connection.features
    if not (features.supports_ignore_conflicts and features.can_return_rows_from_bulk_insert):
        return None
    if len(rows) > 1 and key is None:
        raise ValueError("insert_new needs `key` to match several rows to their pks")
    opts = model._meta
    for row in rows:
        if type(row) is not model or row.pk is not None:
            raise ValueError(f"insert_new writes new {model.__name__} rows only")
        if _tenant_owned(model):
            _check_in_scope(model, row.tenant_id)
        _related_saved(row)
    fields = [f for f in opts.concrete_fields if f is not opts.auto_field and not f.generated]
    query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, rows)
    compiler = query.get_compiler(using=alias)
    # What bulk_create leaves out with ignore_conflicts: RETURNING the rows that went in.
    compiler.returning_fields = [opts.pk] + ([opts.get_field(key)] if key else [])
    [(sql, params)] = compiler.as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    if key is None:
        inserted = [(rows[0], returned[0][0])] if returned else []
    else:
        pks = {value: pk for pk, value in returned}
        inserted = [(row, pks[getattr(row, key)]) for row in rows if getattr(row, key) in pks]
    for row, pk in inserted:
        row.pk = pk
        row._state.adding, row._state.db = False, alias  # Model._state: documented, as save() leaves it
    return [row for row, pk in inserted]


def counter_increment(model, *, field, **where):
    """Add one to `field` of the one row that `where` (field=value equalities) picks, and return
    the new value; None when no row matches. The row stays locked until the caller's transaction
    ends, so concurrent callers queue and never read the same value. One statement (`UPDATE …
    RETURNING`) where the database has it, else SELECT … FOR UPDATE and UPDATE. A tenant-owned
    model needs `tenant` (an id) in `where`, inside that tenant's scope."""
    row = counter_add(model, field=field, by=1, returning=(field,), **where)
    return None if row is None else row[0]


def counter_add(model, *, field, by, within=None, returning=(), **where):
    """Add `by` to `field` of the one row that `where` (field=value equalities) picks — only if
    the new value stays at most the row's `within` column, when one is named (a reservation
    within what is on hand) — and return the `returning` columns as they are after the change,
    as a tuple; None when no row matches or the bound refused (nothing changed). Same lock,
    statement and fallback as `counter_increment`: the row stays locked to the end of the
    caller's transaction, and a concurrent adder blocks, then PostgreSQL re-checks the bound on
    the committed row, so the answer says who got it."""
    _refuse_listened(model, "counter_add")
    opts = model._meta
    if _tenant_owned(model):
        if "tenant" not in where:
            raise ValueError(f"counter_add of {model.__name__} needs the tenant")
        _check_in_scope(model, getattr(where["tenant"], "pk", where["tenant"]))
    alias = router.db_for_write(model)
    connection = connections[alias]
    counter = opts.get_field(field)
    bound = opts.get_field(within) if within is not None else None
    columns = [opts.get_field(name) for name in returning]
    by = int(by)
    if connection.vendor not in ("postgresql", "sqlite") or not connection.features.can_return_columns_from_insert:
        manager = opts.default_manager.db_manager(alias)
        names = [field, bound.name if bound else field, *(f.name for f in columns)]
        found = manager.select_for_update().filter(**where).values_list("pk", *names).first()
        if found is None or (bound is not None and found[1] + by > found[2]):
            return None
        manager.filter(pk=found[0]).update(**{field: F(field) + by})
        # The row is locked: what was read is what the UPDATE left, but for the counter itself.
        return tuple(found[1] + by if f is counter else value for f, value in zip(columns, found[3:], strict=True))
    quote = connection.ops.quote_name
    conditions, params = [], [by]
    for name, value in where.items():
        target = opts.pk if name == "pk" else opts.get_field(name)
        conditions.append(f"{quote(target.column)} = %s")
        params.append(target.get_db_prep_value(getattr(value, "pk", value), connection))
    column = quote(counter.column)
    if bound is not None:
        conditions.append(f"{column} + %s <= {quote(bound.column)}")
        params.append(by)
    back = ", ".join(quote(f.column) for f in columns) or quote(opts.pk.column)
    sql = (f"UPDATE {quote(opts.db_table)} SET {column} = {column} + %s "  # noqa: S608 (names from the model)
           f"WHERE {' AND '.join(conditions)} RETURNING {back}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return tuple(row) if columns else ()
