"""Settlement services: lines computed on ticket_closed, recomputed as adjustments, rules and
price books refused when wrong (nothing saved), the field mapping checked."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from settlement.models import LineKind, ServicePrice, SettlementFieldMap, SettlementLine, SettlementRule
from settlement.services import field_map_save, price_set, rule_save, ticket_lines_compute

from .conftest import close_ticket

pytestmark = pytest.mark.django_db


def lines(ticket):
    return [(line.party.name, line.role, line.kind, line.amount)
            for line in SettlementLine.objects.filter(ticket=ticket).select_related("party").order_by("id")]


def test_east_china_urgent_night_repair_settles_on_close(setup):
    # 200 × 1.15 (class A) = 230; urgent +30% of 230 = 69; night +20% of 230 = 46 → 345.00
    ticket = close_ticket(setup, data={"night": True}, priority="urgent")
    assert lines(ticket) == [("张工", "engineer", "ticket", Decimal("345.00"))]
    steps = SettlementLine.objects.get(ticket=ticket).breakdown.steps
    assert [(s["rule"], Decimal(s["before"]), Decimal(s["after"])) for s in steps] == [
        ("price_book", 0, 200), ("大区系数", 200, 230), ("加急 +30%", 230, 299), ("夜间 +20%", 299, 345)]


def test_tibet_repair_at_4200m_double_rate(setup):
    ticket = close_ticket(setup, data={"altitude": 4200}, region=setup.tibet)
    assert lines(ticket) == [("张工", "engineer", "ticket", Decimal("400.00"))]  # 200 × 1.00 × 2


def test_650km_installation_distance_surcharge(setup):
    ticket = close_ticket(setup, data={"km": "650", "fee": "800"}, region=setup.tibet)
    assert lines(ticket) == [("张工", "engineer", "ticket", Decimal("1025.00"))]  # 800 + 150 km × 1.50


def test_recompute_appends_an_adjustment_never_edits(setup):
    ticket = close_ticket(setup, data={}, region=setup.tibet)
    assert lines(ticket) == [("张工", "engineer", "ticket", Decimal("200.00"))]
    ticket.data = {**ticket.data, "fee": "260"}
    ticket_lines_compute(ticket=ticket)
    ticket_lines_compute(ticket=ticket)  # nothing changed the second time: nothing written
    assert lines(ticket) == [("张工", "engineer", "ticket", Decimal("200.00")),
                             ("张工", "engineer", "adjustment", Decimal("60.00"))]
    with pytest.raises(ValueError):
        SettlementLine.objects.filter(ticket=ticket).first().save()


def test_impossible_altitude_refuses_the_close(setup):
    from tickets.models import Ticket

    with pytest.raises(ValidationError) as err:
        close_ticket(setup, data={"altitude": 20000})
    assert "20000" in str(err.value)
    assert not SettlementLine.objects.exists()
    assert not Ticket.objects.filter(status="closed").exists()


def test_price_book_versions(setup):
    price_set(tenant=setup.tenant, item=setup.repair, price=Decimal("220.00"), effective_from=date(2099, 1, 1))
    ticket = close_ticket(setup, data={}, region=setup.tibet)
    assert lines(ticket)[0][3] == Decimal("200.00")  # the 2099 price is not in force yet


@pytest.mark.parametrize(("price", "message"), [
    (Decimal("-1"), "negative"), (Decimal("1.001"), "two decimals"), (Decimal("1e9"), "two decimals")])
def test_bad_price_refused(setup, price, message):
    before = ServicePrice.objects.count()
    with pytest.raises(ValidationError) as err:
        price_set(tenant=setup.tenant, item=setup.repair, price=price, effective_from=date(2026, 5, 1))
    assert message in str(err.value)
    assert ServicePrice.objects.count() == before


@pytest.mark.parametrize(("values", "message"), [
    ({"name": "x", "kind": "rebate", "params": {"mode": "marginal", "tiers": [
        {"from": 0, "percent": 1}, {"from": 300000, "percent": 3}, {"from": 100000, "percent": 2}]}}, "ascending"),
    ({"name": "x", "kind": "split", "params": {"roles": [{"role": "a", "weight": 0}]}}, "zero"),
    ({"name": "x", "kind": "fixed", "params": {"amount": "-5"}}, "below"),
    ({"name": "x", "kind": "fixed", "params": {"amount": "5"},
      "condition": {"field": "data.no_such_field", "op": "=", "value": 1}}, "no published template"),
    ({"name": "x", "kind": "fixed", "params": {"amount": "5"}, "condition": {"field": "x", "op": "="}},
     "Unknown field"),
    ({"name": "", "kind": "fixed", "params": {"amount": "5"}}, "name"),
    ({"name": "大区系数", "kind": "fixed", "params": {"amount": "5"}}, "Another rule has this name"),
    ({"name": "x", "kind": "altitude", "params": {"above_m": -500, "multiplier": 2}}, "below"),
])
def test_bad_rules_refused_nothing_saved(setup, values, message):
    before = SettlementRule.objects.count()
    with pytest.raises(ValidationError) as err:
        rule_save(tenant=setup.tenant, **values)
    assert message in str(err.value)
    assert SettlementRule.objects.count() == before


def test_overlapping_exclusive_rules_refused(setup):
    rule_save(tenant=setup.tenant, name="夏季加急", kind="surcharge", exclusive=True,
              params={"flag": "urgent", "percent": 50}, effective_from=date(2026, 6, 1),
              effective_to=date(2026, 8, 31))
    with pytest.raises(ValidationError) as err:
        rule_save(tenant=setup.tenant, name="七月加急", kind="surcharge", exclusive=True,
                  params={"flag": "urgent", "percent": 60}, effective_from=date(2026, 7, 1))
    assert "夏季加急" in str(err.value)
    assert not SettlementRule.objects.filter(name="七月加急").exists()


def test_condition_on_a_real_field_accepted(setup):
    rule = rule_save(tenant=setup.tenant, name="夜间固定", kind="fixed", params={"amount": "88"},
                     condition={"field": "data.night", "op": "=", "value": True})
    assert rule.params == {"amount": "88"}


@pytest.mark.parametrize(("mapping", "message"), [
    ({"fee": "no_field"}, "no field"),
    ({"night": "fee"}, "cannot feed"),
    ({"teleport": "fee"}, "Unknown settlement input"),
    ({"role:designer": "fee"}, "cannot feed"),
])
def test_bad_field_mapping_refused(setup, mapping, message):
    before = SettlementFieldMap.objects.get().mapping
    with pytest.raises(ValidationError) as err:
        field_map_save(tenant=setup.tenant, template=setup.template, mapping=mapping)
    assert message in str(err.value)
    assert SettlementFieldMap.objects.get().mapping == before


def test_cross_tenant_objects_refused(setup, tenant_b):
    from scrm.tenancy import tenant_scope
    from tests.factories import published_template

    with tenant_scope(tenant_b):
        other = published_template(tenant_b, slug="other")
        with pytest.raises(ValidationError):
            field_map_save(tenant=tenant_b, template=setup.template, mapping={})
    with pytest.raises(ValidationError):
        price_set(tenant=tenant_b, item=setup.repair, price=Decimal("1"), effective_from=date(2026, 1, 1))
    assert other.tenant_id == tenant_b.pk
    assert LineKind.TICKET == "ticket"


def test_distance_from_the_store_to_the_mapped_address(setup):
    from settlement.inputs import ticket_input
    from tests.factories import StoreFactory, published_template
    from tickets.services import ticket_intake

    fields = [{"key": "site", "type": "address", "label": {"zh-hans": "地址", "en": "Site"}, "public": "edit"},
              {"key": "fee", "type": "money", "label": {"zh-hans": "费用", "en": "Fee"}, "public": "hidden"}]
    template = published_template(setup.tenant, name="安装", slug="install", fields=fields, prefix="AZ")
    field_map_save(tenant=setup.tenant, template=template, mapping={"location": "site", "fee": "fee"})
    store = StoreFactory(tenant=setup.tenant, region=setup.east, code="sh-renmin", latitude=Decimal("31.230400"),
                         longitude=Decimal("121.473700"))
    ticket = ticket_intake(tenant=setup.tenant, source="web", template=template, store=store, region=setup.east,
                           data={"site": {"text": "合肥市政务区", "lat": 31.8206, "lng": 117.2272}, "fee": "100"},
                           title="安装", actor=setup.admin)
    data = ticket_input(ticket=ticket)
    assert Decimal("395") < data.distance_km < Decimal("410")
    assert data.fee == Decimal("100") and data.region_class == "A"


def test_hours_come_from_the_phone_check_in_when_there_is_one(setup):
    from datetime import timedelta

    from django.utils import timezone

    from settlement.inputs import onsite_minutes
    from tests.settlement.conftest import MAPPING
    from tickets.models import SiteVisit
    from tickets.services import ticket_intake

    ticket = ticket_intake(tenant=setup.tenant, source="web", template=setup.template,
                           data={"item": "repair", "hours": "2.5"}, title="维修", store=setup.store)
    assert onsite_minutes(ticket=ticket, mapping=MAPPING) == 150  # the typed hours until a visit is recorded
    start = timezone.now() - timedelta(hours=2)
    SiteVisit.objects.create(tenant=setup.tenant, ticket=ticket, engineer=setup.engineer, radius_m=300,
                             checked_in_at=start, verdict="within", checked_out_at=start + timedelta(minutes=95),
                             minutes_on_site=95)
    assert onsite_minutes(ticket=ticket, mapping=MAPPING) == 95
