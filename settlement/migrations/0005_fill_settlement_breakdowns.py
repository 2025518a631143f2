"""Each existing line's breakdown stored once per tenant and content, the line pointing to it."""

import hashlib
import json
from collections import defaultdict

from django.db import migrations

CHUNK = 5000


def _digest(steps):
    # calculator.steps_digest as of this migration: the same steps, the same digest
    return hashlib.sha256(json.dumps(steps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def forwards(apps, schema_editor):
    Line = apps.get_model("settlement", "SettlementLine")
    Breakdown = apps.get_model("settlement", "SettlementBreakdown")
    ids = {}  # (tenant id, digest) → breakdown id
    pending = defaultdict(list)  # breakdown id → line ids

    def flush():
        for breakdown_id, line_ids in pending.items():
            Line.objects.filter(pk__in=line_ids).update(breakdown_id=breakdown_id)
        pending.clear()

    rows = Line.objects.order_by("pk").values_list("pk", "tenant_id", "breakdown_steps")
    for n, (pk, tenant_id, steps) in enumerate(rows.iterator(chunk_size=CHUNK), 1):
        steps = steps if steps is not None else []
        key = (tenant_id, _digest(steps))
        if key not in ids:
            ids[key] = Breakdown.objects.create(tenant_id=tenant_id, digest=key[1], steps=steps).pk
        pending[ids[key]].append(pk)
        if n % CHUNK == 0:
            flush()
    flush()


def backwards(apps, schema_editor):
    Line = apps.get_model("settlement", "SettlementLine")
    Breakdown = apps.get_model("settlement", "SettlementBreakdown")
    for breakdown in Breakdown.objects.iterator():
        Line.objects.filter(breakdown_id=breakdown.pk).update(breakdown_steps=breakdown.steps)
    Line.objects.update(breakdown=None)
    Breakdown.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('settlement', '0004_settlement_breakdowns'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
