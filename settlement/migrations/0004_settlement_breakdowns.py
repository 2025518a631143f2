"""Breakdowns stored once per tenant and content (SettlementBreakdown), lines pointing to them;
the line indexes cut to one per way lines are read (no index of the tenant, ticket and party
foreign keys; the party's composite index without the tenant before it). This step adds the table and a nullable
foreign key beside the old JSON column (renamed `breakdown_steps`); 0005 fills it, 0006 drops the
old column — three migrations, because PostgreSQL refuses to alter a table in the transaction
that has just updated its rows under a deferred foreign key."""

import django.db.models.deletion
from django.db import migrations, models

import settlement.models


class Migration(migrations.Migration):

    dependencies = [
        ('scrm', '0005_merge_20261207_2012'),
        ('settlement', '0003_line_breakdown_encoder'),
        ('tickets', '0010_open_ticket_partial_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='SettlementBreakdown',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(max_length=64)),
                ('steps', models.JSONField(default=list, encoder=settlement.models.BreakdownEncoder,
                                           verbose_name='breakdown')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                             to='scrm.tenant', verbose_name='tenant')),
            ],
            options={
                'verbose_name': 'settlement breakdown',
                'verbose_name_plural': 'settlement breakdowns',
                'constraints': [models.UniqueConstraint(fields=('tenant', 'digest'),
                                                        name='settlementbreakdown_unique')],
            },
        ),
        migrations.RemoveIndex(
            model_name='settlementline',
            name='settlementline_party',
        ),
        migrations.AlterField(
            model_name='settlementline',
            name='party',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='lines',
                                    to='settlement.party', verbose_name='party'),
        ),
        migrations.AlterField(
            model_name='settlementline',
            name='ticket',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='tickets.ticket'),
        ),
        migrations.AlterField(
            model_name='settlementline',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                    to='scrm.tenant', verbose_name='tenant'),
        ),
        migrations.AddIndex(
            model_name='settlementline',
            index=models.Index(fields=['party', 'period_date'], name='settlementline_party'),
        ),
        migrations.RenameField(
            model_name='settlementline',
            old_name='breakdown',
            new_name='breakdown_steps',
        ),
        migrations.AddField(
            model_name='settlementline',
            name='breakdown',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='settlement.settlementbreakdown', verbose_name='breakdown'),
        ),
    ]
