"""质检: keyword rules over public staff comments (RE2, literal phrases), required phrases on
finished tickets, idempotent scans, the review page, and bad rules refused with nothing written."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from dashboards.models import QualityFlag, QualityRule
from dashboards.services import quality_rule_save, quality_scan
from dashboards.tasks import quality_scan_task
from tickets.services import ticket_comment_add
from workflow.lifecycle import ticket_status_change

pytestmark = pytest.mark.django_db


def test_scan_flags_forbidden_words_once(scope_a, staff, file_ticket, places):
    ticket = file_ticket(places["xuhui"])
    quiet = file_ticket(places["xuhui"])
    ticket_comment_add(ticket=ticket, body="这个我也不知道，你自己去问门店吧", actor=staff["agent"], is_public=True,
                       notify=False)
    ticket_comment_add(ticket=quiet, body="a-b 型号已登记", actor=staff["agent"], is_public=True, notify=False)
    ticket_comment_add(ticket=quiet, body="没办法（内部备注）", actor=staff["agent"], is_public=False, notify=False)
    # A rule added after the replies: the scan finds what was written before it existed (a reply
    # written under the rule is flagged at once, tests/dashboards/test_csat_quality.py).
    rule = quality_rule_save(tenant=scope_a, name="禁用语", kind="forbidden", phrases="不知道，没办法, a.*b")
    since = ticket.created_at
    assert quality_scan(since=since) == 1
    assert quality_scan(since=since) == 0  # scanning again adds nothing
    flag = QualityFlag.objects.get()
    assert (flag.ticket_id, flag.rule_id) == (ticket.pk, rule.pk) and "不知道" in flag.excerpt


def test_required_phrase_missing_on_a_finished_ticket(scope_a, staff, file_ticket, places):
    polite = file_ticket(places["xuhui"])
    curt = file_ticket(places["xuhui"])
    ticket_comment_add(ticket=polite, body="您好，已为您安排", actor=staff["agent"], is_public=True, notify=False)
    for t in (polite, curt):
        ticket_status_change(ticket=t, action="close", actor=staff["manager"])
    quality_rule_save(tenant=scope_a, name="礼貌用语", kind="required", phrases=["您好", "感谢"])  # added afterwards
    assert quality_scan(since=polite.created_at) == 1
    assert QualityFlag.objects.get().ticket_id == curt.pk


@pytest.mark.parametrize("phrases, field", [
    ("", "phrases"), ("，, ,", "phrases"), (["长" * 51], "phrases"), ([f"词{i}" for i in range(31)], "phrases"),
    (42, "phrases"),
])
def test_bad_rules_are_refused(scope_a, phrases, field):
    with pytest.raises(ValidationError) as exc:
        quality_rule_save(tenant=scope_a, name="规则", kind="flag", phrases=phrases)
    assert field in exc.value.message_dict
    assert not QualityRule.objects.exists()


def test_quality_page_add_rule_scan_and_review(scope_a, staff, file_ticket, places, client_for,
                                               django_assert_max_num_queries):
    ticket = file_ticket(places["xuhui"])
    ticket_comment_add(ticket=ticket, body="你自己看说明书", actor=staff["agent"], is_public=True, notify=False)
    client = client_for(staff["manager"])
    bad = client.post(reverse("quality"), {"name": "", "kind": "nope", "phrases": ""})
    assert bad.status_code == 400 and not QualityRule.objects.exists()
    huge = client.post(reverse("quality"), {"name": "推诿", "kind": "flag", "phrases": "词," * 5000})
    assert huge.status_code == 400 and not QualityRule.objects.exists()
    assert client.post(reverse("quality"), {"name": "推诿", "kind": "flag", "phrases": "你自己看"}).status_code == 302
    assert client.post(reverse("quality"), {"name": "推诿", "kind": "flag", "phrases": "x"}).status_code == 400
    client.post(reverse("quality"), {"action": "scan"})
    flag = QualityFlag.objects.get()
    with django_assert_max_num_queries(15):
        page = client.get(reverse("quality"))
    assert ticket.number in page.content.decode()
    assert client.post(reverse("quality-review", args=[flag.pk])).status_code == 302
    flag.refresh_from_db()
    assert flag.reviewed_by == staff["manager"]
    assert ticket.number not in client.get(reverse("quality")).content.decode()


def test_agents_see_flags_but_cannot_add_rules_and_other_tenants_get_404(scope_a, staff, file_ticket, places,
                                                                         client_for, admin_b):
    rule = quality_rule_save(tenant=scope_a, name="推诿", kind="flag", phrases="你自己看")
    ticket = file_ticket(places["xuhui"])
    flag = QualityFlag.objects.create(tenant=scope_a, ticket=ticket, rule=rule, excerpt="你自己看")
    agent = client_for(staff["agent"])
    assert agent.get(reverse("quality")).status_code == 200
    assert agent.post(reverse("quality"), {"name": "新规则", "kind": "flag", "phrases": "x"}).status_code == 403
    assert client_for(admin_b).post(reverse("quality-review", args=[flag.pk])).status_code == 404
    flag.refresh_from_db()
    assert flag.reviewed_at is None and QualityRule.objects.count() == 1


def test_the_task_scans_its_tenant(scope_a, staff, file_ticket, places):
    ticket = file_ticket(places["xuhui"])
    ticket_comment_add(ticket=ticket, body="你自己看说明书", actor=staff["agent"], is_public=True, notify=False)
    quality_rule_save(tenant=scope_a, name="推诿", kind="flag", phrases="你自己看")  # after the reply
    assert quality_scan_task.apply(kwargs={"tenant_id": scope_a.pk}).get() == 1
