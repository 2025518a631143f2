import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('settlement', '0005_fill_settlement_breakdowns'),
    ]

    operations = [
        migrations.AlterField(
            model_name='settlementline',
            name='breakdown',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+',
                                    to='settlement.settlementbreakdown', verbose_name='breakdown'),
        ),
        migrations.RemoveField(
            model_name='settlementline',
            name='breakdown_steps',
        ),
    ]
