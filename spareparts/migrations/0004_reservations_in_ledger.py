"""A reservation is its `reserve` ledger line: the node and the distance move onto the line, the
reservation table goes (what a ticket holds is the sum of its lines' reserved_delta)."""

from django.db import migrations, models


def copy_onto_lines(apps, schema_editor):
    # Each reservation was written with one reserve line of the same ticket, part, warehouse and
    # quantity: pair them in id order and copy the node and distance across.
    Reservation = apps.get_model("spareparts", "Reservation")
    Movement = apps.get_model("spareparts", "Movement")
    taken: set[int] = set()
    for res in Reservation.objects.order_by("pk").iterator():
        if not res.node_key and res.distance_km is None:
            continue
        line = (Movement.objects.filter(ticket_id=res.ticket_id, part_id=res.part_id, warehouse_id=res.warehouse_id,
                                        kind="reserve", quantity=res.quantity)
                .exclude(pk__in=taken).order_by("pk").values_list("pk", flat=True).first())
        if line is None:
            continue
        taken.add(line)
        Movement.objects.filter(pk=line).update(node_key=res.node_key, distance_km=res.distance_km)


class Migration(migrations.Migration):

    dependencies = [
        ("spareparts", "0003_ledger_index_trim"),
    ]

    operations = [
        migrations.AddField(
            model_name="movement",
            name="node_key",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name="movement",
            name="distance_km",
            field=models.DecimalField(blank=True, decimal_places=1, max_digits=8, null=True),
        ),
        migrations.RunPython(copy_onto_lines, migrations.RunPython.noop),
        migrations.DeleteModel(name="Reservation"),
    ]
