"""django-import-export resource for the ticket list's export (CSV / Excel): the columns a
manager reads, labels in the reader's language. Export only — tickets are never imported here.
`RowCells` gives the same cells from a plain values() row, for the background export's batches."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources

from tickets.models import Priority, Source, Status, Ticket


def _local(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _cell(value):
    """Text a person typed, made harmless for spreadsheets (no leading =, +, -, @ formula)."""
    text = str(value or "")
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


class TicketExportResource(resources.ModelResource):
    number = fields.Field(attribute="number", column_name=_("Number"))
    title = fields.Field(column_name=_("Title"))
    status = fields.Field(column_name=_("Status"))
    priority = fields.Field(column_name=_("Priority"))
    source = fields.Field(column_name=_("Source"))
    template = fields.Field(attribute="template__name", column_name=_("Template"))
    store = fields.Field(column_name=_("Store"))
    customer = fields.Field(column_name=_("Customer"))
    assignee = fields.Field(column_name=_("Assignee"))
    created = fields.Field(column_name=_("Created at"))
    resolved = fields.Field(column_name=_("Resolved at"))

    class Meta:
        model = Ticket
        fields = ("number", "title", "status", "priority", "source", "template", "store", "customer", "assignee",
                  "created", "resolved")
        export_order = fields

    def dehydrate_title(self, ticket):
        return _cell(ticket.title)

    def dehydrate_status(self, ticket):
        return str(Status(ticket.status).label)

    def dehydrate_priority(self, ticket):
        return str(Priority(ticket.priority).label)

    def dehydrate_source(self, ticket):
        return str(Source(ticket.source).label) if ticket.source in Source.values else ticket.source

    def dehydrate_store(self, ticket):
        return ticket.store.name if ticket.store_id else ""

    def dehydrate_customer(self, ticket):
        return _cell(ticket.customer.name) if ticket.customer_id else ""

    def dehydrate_assignee(self, ticket):
        return (ticket.assignee.first_name or ticket.assignee.username) if ticket.assignee_id else ""

    def dehydrate_created(self, ticket):
        return _local(ticket.created_at)

    def dehydrate_resolved(self, ticket):
        return _local(ticket.resolved_at or ticket.closed_at)


class RowCells:
    """The resource's cells for one `values()` row (dashboards.export_selectors.ROW_FIELDS), in
    the same order and wording as TicketExportResource — built once per export, so the labels are
    translated once, not per row (the background export writes 100,000 rows and more)."""

    def __init__(self):
        self.headers = TicketExportResource().get_export_headers()
        self.status = {value: str(label) for value, label in Status.choices}
        self.priority = {value: str(label) for value, label in Priority.choices}
        self.source = {value: str(label) for value, label in Source.choices}

    def __call__(self, row):
        return [
            row["number"], _cell(row["title"]), self.status.get(row["status"], row["status"]),
            self.priority.get(row["priority"], row["priority"]), self.source.get(row["source"], row["source"]),
            row["template__name"] or "", row["store__name"] or "", _cell(row["customer__name"]),
            row["assignee__first_name"] or row["assignee__username"] or "",
            _local(row["created_at"]), _local(row["resolved_at"] or row["closed_at"]),
        ]
