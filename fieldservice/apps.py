"""App config of field service: the engineer's phone pages (今日任务, the visit page) and the
manager's view of the day's check-ins. Its data lives in tickets (SiteVisit), so settlement,
a lower layer, can read the time on site."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FieldserviceConfig(AppConfig):
    name = "fieldservice"
    verbose_name = _("Field service")
