"""Smart dispatch's "recent speed": each person's median minutes from a task's creation to their
first action on it (`Task.first_action_at`, set once by workflow/lifecycle.py when a holder
first acts) over the last SPEED_DAYS days, kept on their Workload row in that action's
transaction, so a dispatch decision reads it with the person's load instead of aggregating
everyone's recent tasks each time.

The stored median is the window as of the person's last first action (`speed_at`); readers treat
it as unknown once that is older than the window, when it would hold no samples any more."""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from .models import Task, Workload
from .workload import workload_upsert

SPEED_DAYS = 3


def _minutes(pairs: Iterable[tuple[Any, Any]]) -> float | None:
    samples = [(acted - created).total_seconds() / 60 for created, acted in pairs
               if created is not None and acted is not None and acted >= created]
    return round(statistics.median(samples), 1) if samples else None


def speed_note(tenant_id: int, user_id: int, now: datetime.datetime | None = None) -> None:
    """Recompute one person's median after they first acted on a task (a bounded read of their
    own first actions in the window, by the index `task_first_action`)."""
    now = now or timezone.now()
    pairs = Task.objects.filter(first_action_by_id=user_id,
                                first_action_at__gte=now - datetime.timedelta(days=SPEED_DAYS),
                                first_action_at__lte=now).values_list("created_at", "first_action_at")
    median = _minutes(pairs)
    workload_upsert(tenant_id, user_id, update={"speed_minutes": median, "speed_at": now},
                    create={"open_tasks": 0, "speed_minutes": median, "speed_at": now})


def speed_recount(now: datetime.datetime | None = None) -> int:
    """Recompute everyone's median in the tenant in scope from their tasks (one read of the
    window's first actions): for a backfill or a bench's generated data. How many rows changed."""
    now = now or timezone.now()
    by_user: dict[int, list] = {}
    last: dict[int, datetime.datetime] = {}
    for user_id, created, acted in (Task.objects.filter(first_action_by__isnull=False,
                                                        first_action_at__gte=now - datetime.timedelta(days=SPEED_DAYS))
                                    .values_list("first_action_by_id", "created_at", "first_action_at")):
        if acted is None:
            continue
        by_user.setdefault(user_id, []).append((created, acted))
        last[user_id] = max(last.get(user_id, acted), acted)
    rows = {w.user_id: w for w in Workload.objects.all()}
    changed = []
    for user_id, pairs in by_user.items():
        work = rows.get(user_id)
        if work is None:
            continue  # nobody counted yet: their next first action writes the row
        work.speed_minutes, work.speed_at = _minutes(pairs), last[user_id]
        changed.append(work)
    Workload.objects.bulk_update(changed, ["speed_minutes", "speed_at"], batch_size=1000)
    return len(changed)
