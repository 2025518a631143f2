# Partial indexes of open tickets for the dashboards (issue 20): the 工作台's "open" count and the
# progress board's columns read only open tickets, which are a small part of a tenant's history.
# Declared in SQL rather than in Ticket.Meta so the tickets app's model stays as it is (the
# dashboards own these reads); the statement is the same on PostgreSQL and SQLite.

from django.db import migrations

OPEN = "('new', 'in_progress', 'waiting')"  # tickets.models.OPEN_STATUSES

INDEXES = {
    # Open tickets newest first: the capped open count is an index-only scan; the board's
    # "all open" and "no workflow" columns stop after their first cards.
    "ticket_open_newest": f"tickets_ticket (tenant_id, created_at DESC, id DESC) WHERE status IN {OPEN}",
    # The board by handler: each handler's newest open cards, and the per-handler counts.
    "ticket_open_assignee": f"tickets_ticket (tenant_id, assignee_id, created_at DESC, id DESC) WHERE status IN {OPEN}",
}


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0009_template_site_photos_public'),
    ]

    operations = [
        migrations.RunSQL(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}", f"DROP INDEX IF EXISTS {name}")
        for name, definition in INDEXES.items()
    ]
