"""How notifications reads a settlement run (its SubjectKind): the message variables of the
"settlement ready" event and who hears of it by default (the tenant's finance staff)."""

from notifications.subjects import SubjectKind
from scrm.models import Membership, Role


class RunSubject(SubjectKind):
    def recipients(self, subject, *, event, actor, context):
        users = [m.user for m in Membership.objects.filter(role=Role.FINANCE, is_active=True).select_related("user")]
        return users, []

    def variables(self, subject):
        return {"settlement_period": f"{subject.period_start:%Y-%m-%d} – {subject.period_end:%Y-%m-%d}",
                "amount": f"¥{subject.total:,.2f}", "ticket_url": f"/settlement/runs/{subject.pk}/"}

    def occurrence(self, subject):
        return f"{subject.pk}:{subject.state}"
