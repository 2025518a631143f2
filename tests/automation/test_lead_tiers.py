"""Lead tiers (线索分级 A–D) from rules over the opportunities' amount, the customer's source and
last contact; each tier's follow-up plan; last contact stamped by tickets and revisits; the
tier and next step on the customer's page; bad rules refused with nothing written."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from automation.models import CustomerGrade, LeadRule, Revisit
from automation.services import lead_grades_daily, lead_grades_refresh, lead_rules_save, revisit_record
from automation.tasks import lead_grade_tenants
from scrm.models import Customer
from scrm.services import customer_create, opportunity_create
from tests.factories import CustomerFactory, published_template
from tickets.models import Source
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
OFF = {"is_active": False}
RULES = {
    "A": {"is_active": True, "min_amount": Decimal("500000"), "contact_within_days": 30,
          "followup_days": 1, "followup_reason": "大客户经理次日拜访"},
    "B": {"is_active": True, "sources": ["referral", "exhibition"], "followup_days": 7,
          "followup_reason": "B级线索7天回访"},
    "C": {"is_active": True, "contact_older_than_days": 90},
    "D": {"is_active": True},
}


@pytest.fixture
def now(time_machine):
    moment = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH)
    time_machine.move_to(moment, tick=False)
    return moment


def touch(customer, when):
    Customer.objects.filter(pk=customer.pk).update(last_contact_at=when)


def test_rules_grade_by_amount_source_and_last_contact(scope_a, now):
    big = CustomerFactory(tenant=scope_a, name="大单客户")
    opportunity_create(tenant=scope_a, customer=big, title="中央厨房设备", amount=Decimal("600000"))
    touch(big, now - datetime.timedelta(days=3))
    referred = CustomerFactory(tenant=scope_a, name="转介绍客户", source="referral")
    silent = CustomerFactory(tenant=scope_a, name="沉默客户")
    recent = CustomerFactory(tenant=scope_a, name="普通客户")
    touch(recent, now - datetime.timedelta(days=10))
    assert lead_rules_save(tenant=scope_a, rules=RULES) == 4
    grades = dict(CustomerGrade.objects.values_list("customer__name", "grade"))
    assert grades == {"大单客户": "A", "转介绍客户": "B", "沉默客户": "C", "普通客户": "D"}
    # The tiers' follow-up plans: A tomorrow, B in 7 days; C and D have none.
    plans = dict(Revisit.objects.values_list("customer__name", "due_on"))
    assert plans == {"大单客户": datetime.date(2026, 12, 8), "转介绍客户": datetime.date(2026, 12, 14)}
    assert Revisit.objects.get(customer=referred).reason == "B级线索7天回访"
    # Regrading with nothing changed writes nothing new.
    assert lead_grades_refresh(tenant=scope_a) == 0 and Revisit.objects.count() == 2
    assert not CustomerGrade.objects.filter(customer=silent).exclude(grade="C").exists()


def test_time_moves_a_customer_out_of_a_contact_rule_at_the_daily_pass(scope_a, now, time_machine):
    big = CustomerFactory(tenant=scope_a)
    opportunity_create(tenant=scope_a, customer=big, title="中央厨房设备", amount=Decimal("600000"))
    touch(big, now)
    lead_rules_save(tenant=scope_a, rules=RULES)
    assert CustomerGrade.objects.get(customer=big).grade == "A"
    time_machine.move_to(now + datetime.timedelta(days=31), tick=False)
    assert lead_grades_daily(tenant_ids=lead_grade_tenants()) == {scope_a.pk: 1}
    assert CustomerGrade.objects.get(customer=big).grade == "D"


def test_a_ticket_or_a_revisit_stamps_the_last_contact_and_events_regrade(scope_a, now, agent_a):
    lead_rules_save(tenant=scope_a, rules=RULES)
    customer = customer_create(tenant=scope_a, name="新客户", phone="13900000001")
    assert CustomerGrade.objects.get(customer=customer).grade == "C"  # never contacted
    template = published_template(scope_a)
    ticket_intake(tenant=scope_a, source=Source.STAFF, template=template, data={}, audience="staff", partial=True,
                  title="咨询", customer=customer)
    customer.refresh_from_db()
    assert customer.last_contact_at == now
    opportunity_create(tenant=scope_a, customer=customer, title="门店改造", amount=Decimal("800000"))
    assert CustomerGrade.objects.get(customer=customer).grade == "A"  # the opportunity event regraded it
    revisit = Revisit.objects.get(customer=customer)
    revisit_record(revisit=revisit, outcome="satisfied", actor=agent_a)
    customer.refresh_from_db()
    assert customer.last_contact_at == revisit.done_at or customer.last_contact_at >= now


@pytest.mark.parametrize("rules, key", [
    ({"A": {"contact_within_days": 7, "contact_older_than_days": 30}}, "A-contact_older_than_days"),
    ({"B": {"sources": ["carrier-pigeon"]}}, "B-sources"),
    ({"C": {"followup_days": 7, "followup_reason": ""}}, "C-followup_reason"),
    ({"D": {"followup_days": 400, "followup_reason": "x"}}, "D-followup_days"),
    ({"A": {"min_amount": Decimal("-1")}}, "A-min_amount"),
    ({"E": {}}, "grade"),
])
def test_bad_rules_are_refused_with_nothing_written(scope_a, now, rules, key):
    CustomerFactory(tenant=scope_a)
    with pytest.raises(ValidationError) as exc:
        lead_rules_save(tenant=scope_a, rules=rules)
    assert key in exc.value.message_dict
    assert not LeadRule.objects.exists() and not CustomerGrade.objects.exists()


def test_rules_page_and_customer_panel(client_for, manager_a, scope_a, now, tenant_b):
    from scrm.tenancy import tenant_scope

    customer = CustomerFactory(tenant=scope_a, name="展会客户", source="exhibition")
    with tenant_scope(tenant_b):
        other = CustomerFactory(tenant=tenant_b, source="exhibition")
    client = client_for(manager_a)
    page = client.get(reverse("automation-lead-rules"))
    assert page.status_code == 200 and 'data-testid="lead-rule-D"' in page.content.decode()
    form = {"B-is_active": "on", "B-sources": ["exhibition"], "B-followup_days": "7",
            "B-followup_reason": "B级线索7天回访"}
    bad = client.post(reverse("automation-lead-rules"), {**form, "A-contact_within_days": "5",
                                                         "A-contact_older_than_days": "9"})
    assert bad.status_code == 400 and not LeadRule.objects.exists()
    assert client.post(reverse("automation-lead-rules"), {**form, "C-min_amount": "-5"}).status_code == 400
    assert client.post(reverse("automation-lead-rules"), form).status_code == 302
    assert CustomerGrade.objects.get().customer_id == customer.pk  # the other tenant's customer is not graded
    with tenant_scope(tenant_b):
        assert not CustomerGrade.objects.filter(customer=other).exists()
    detail = client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    assert 'data-testid="lead-grade">B<' in detail and "B级线索7天回访" in detail
