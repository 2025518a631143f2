"""Task.first_action_at / first_action_by (smart dispatch's recent speed = time to first action),
backfilled for completed tasks from the timeline, and the Workload medians recomputed from it."""

import datetime
import statistics

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

SPEED_DAYS = 3  # workflow.dispatch_speed.SPEED_DAYS at the time of writing


def backfill(apps, schema_editor):
    """A completed task's first action is its completer's first workflow event on the ticket
    between the task's creation and its completion (the completion itself writes one, so the
    completion time is the fallback when the timeline lacks it). Open and cancelled tasks start
    empty: whoever acts on them next records it."""
    Task = apps.get_model("workflow", "Task")
    Event = apps.get_model("tickets", "TimelineEvent")
    Workload = apps.get_model("workflow", "Workload")
    first = (Event.objects.filter(ticket_id=OuterRef("ticket_id"), kind="workflow", actor_id=OuterRef("completed_by_id"),
                                  created_at__gte=OuterRef("created_at"), created_at__lte=OuterRef("completed_at"))
             .order_by("created_at").values("created_at")[:1])
    Task.objects.filter(completed_by__isnull=False, completed_at__isnull=False, first_action_at__isnull=True).update(
        first_action_at=Coalesce(Subquery(first), F("completed_at")), first_action_by_id=F("completed_by_id"))
    # The Workload medians were creation → completion: recompute them as creation → first action.
    now = timezone.now()
    samples: dict[tuple[int, int], list[float]] = {}
    last: dict[tuple[int, int], datetime.datetime] = {}
    for tenant_id, user_id, created, acted in Task.objects.filter(
            first_action_by__isnull=False, first_action_at__gte=now - datetime.timedelta(days=SPEED_DAYS)).values_list(
            "tenant_id", "first_action_by_id", "created_at", "first_action_at"):
        if acted >= created:
            samples.setdefault((tenant_id, user_id), []).append((acted - created).total_seconds() / 60)
            last[(tenant_id, user_id)] = max(last.get((tenant_id, user_id), acted), acted)
    Workload.objects.update(speed_minutes=None, speed_at=None)
    rows = []
    for work in Workload.objects.all():
        key = (work.tenant_id, work.user_id)
        if key in samples:
            work.speed_minutes, work.speed_at = round(statistics.median(samples[key]), 1), last[key]
            rows.append(work)
    Workload.objects.bulk_update(rows, ["speed_minutes", "speed_at"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('scrm', '0005_merge_20261207_2012'),
        ('tickets', '0010_open_ticket_partial_indexes'),
        ('workflow', '0007_workload_dispatch_speed'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='task',
            name='task_dispatch_speed',
        ),
        migrations.AddField(
            model_name='task',
            name='first_action_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='first action at'),
        ),
        migrations.AddField(
            model_name='task',
            name='first_action_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='task',
            index=models.Index(fields=['tenant', 'first_action_by', 'first_action_at'], name='task_first_action'),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
