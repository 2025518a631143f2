"""The write primitive of the Workload roll-up (one row per person: open tasks, recent speed),
shared by the engine's writer of tasks (lifecycle) and the speed keeper (dispatch_speed)."""

from __future__ import annotations

from typing import Any

from scrm.db import insert_new

from .models import Workload


def workload_upsert(tenant_id: int, user_id: int, *, update: dict[str, Any], create: dict[str, Any]) -> None:
    """Apply `update` to the person's row, creating it with `create` the first time, in the
    caller's transaction. A concurrent first writer wins the insert; this one then updates."""
    if Workload.objects.filter(user_id=user_id).update(**update):
        return
    inserted = insert_new([Workload(tenant_id=tenant_id, user_id=user_id, **create)])
    if inserted is None:  # a database that cannot insert-or-skip in one statement
        Workload.objects.create(tenant_id=tenant_id, user_id=user_id, **create)
    elif not inserted:
        Workload.objects.filter(user_id=user_id).update(**update)
