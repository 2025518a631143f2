"""`manage.py calendar_import --tenant <slug> [--calendar NAME] [--create] FILE`: import a holiday
file (workflow/data/cn_holidays_2026_2027.yaml and files in its format) into a business calendar
of one tenant. Without --calendar it is the tenant's default calendar; --create makes the named
(or a default) calendar first when the tenant has none by that name, with Monday–Friday
09:00–12:00 and 13:00–18:00. A whole calendar exported by workflow.services.calendar_export
(format scrm.calendar/1) is imported under its own name when --calendar is not given. Nothing is
written when the file has any error."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from scrm.management.base import TenantCommand
from workflow.models import BusinessCalendar
from workflow.services import (
    CALENDAR_FORMAT,
    calendar_create,
    calendar_days_import,
    calendar_file_load,
    calendar_import,
)
from workflow.sla import WEEKDAYS

DEFAULT_NAME = "工作日历"
OFFICE_HOURS = {day: [["09:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


class Command(TenantCommand):
    help = "Import holidays and make-up working days from a YAML/JSON file into a business calendar."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("file", help="a holiday file, e.g. workflow/data/cn_holidays_2026_2027.yaml")
        parser.add_argument("--calendar", help="the calendar's name (default: the tenant's default calendar)")
        parser.add_argument("--create", action="store_true",
                            help="create the calendar (Mon–Fri office hours) when it does not exist")
        parser.add_argument("--workday-like", choices=WEEKDAYS,
                            help="make-up working days keep this weekday's hours (default: the file's, else mon)")

    def handle_tenant(self, tenant, *args, **options):
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        name = options.get("calendar")
        calendars = BusinessCalendar.objects.filter(**({"name": name} if name else {"is_default": True}))
        calendar = calendars.first()
        made = False
        try:
            with transaction.atomic():  # a calendar made here goes too when its import fails
                payload = calendar_file_load(data)
                if options.get("workday_like"):
                    payload["workday_like"] = options["workday_like"]
                if payload.get("format") == CALENDAR_FORMAT and not name:  # a whole exported calendar
                    calendar = calendar_import(tenant=tenant, payload=payload)
                    self.stdout.write(self.style.SUCCESS(f"{calendar.name}: imported (version {calendar.version})."))
                    return
                if calendar is None:
                    if not options["create"]:
                        raise CommandError(f"Tenant {tenant.slug} has no calendar {name!r}; pass --create to make it."
                                           if name else f"Tenant {tenant.slug} has no default calendar; pass "
                                                        "--calendar NAME, or --create to make one.")
                    calendar = calendar_create(tenant=tenant, name=name or DEFAULT_NAME, weekly_hours=OFFICE_HOURS)
                    made = True
                created, updated = calendar_days_import(calendar=calendar, payload=payload)
                calendar.refresh_from_db()
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if made:
            self.stdout.write(f"Created calendar {calendar.name!r} (Mon–Fri 09:00–12:00, 13:00–18:00).")
        self.stdout.write(self.style.SUCCESS(
            f"{calendar.name}: {created} days added, {updated} changed (version {calendar.version})."))
