"""Each rule kind has its own form fields (no JSON to type for the numbers): what each saves,
the message each bad value gets, and that a refused form writes nothing."""

from decimal import Decimal

import pytest
from django.urls import reverse

from settlement.forms import RuleForm, params_initial
from settlement.models import SettlementRule

pytestmark = pytest.mark.django_db

COMMON = {"priority": "100", "is_active": "on"}
GOOD = [
    ("fixed", {"amount": "880"}, {"amount": "880"}),
    ("per_item", {}, {}),
    ("hourly", {"rate": "120.50"}, {"rate": "120.5"}),
    ("milestones", {"m1_name": "开工", "m1_share": "30", "m2_name": "验收", "m2_share": "70"},
     {"milestones": [{"name": "开工", "share": "30"}, {"name": "验收", "share": "70"}]}),
    ("region_class", {"class_A": "1.15", "class_C": "1"}, {"coefficients": {"A": "1.15", "C": "1"}}),
    ("altitude", {"above_m": "3000", "multiplier": "2"}, {"above_m": 3000, "multiplier": "2"}),
    ("surcharge", {"flag": "urgent", "percent": "30"}, {"flag": "urgent", "percent": "30"}),
    ("distance", {"base_km": "500", "per_km": "1.5"}, {"base_km": "500", "base_amount": "0", "per_km": "1.5"}),
    ("split", {"r1_role": "designer", "r1_weight": "3", "r2_role": "crew", "r2_weight": "5"},
     {"roles": [{"role": "designer", "weight": "3"}, {"role": "crew", "weight": "5"}]}),
    ("rebate", {"period": "month", "party_kind": "distributor", "basis": "amount", "mode": "marginal",
                "t1_from": "0", "t1_percent": "0", "t2_from": "100000", "t2_percent": "2"},
     {"period": "month", "party_kind": "distributor", "basis": "amount", "mode": "marginal",
      "tiers": [{"from": "0", "percent": "0"}, {"from": "100000", "percent": "2"}]}),
    ("first_order_bonus", {"period": "quarter", "party_kind": "agent", "threshold": "500000", "percent": "8"},
     {"period": "quarter", "party_kind": "agent", "threshold": "500000", "percent": "8"}),
    ("target_bonus", {"period": "quarter", "party_kind": "", "target": "2000000", "percent": "5"},
     {"period": "quarter", "party_kind": "", "target": "2000000", "percent": "5"}),
]


@pytest.mark.parametrize("kind, fields, params", GOOD, ids=[g[0] for g in GOOD])
def test_each_kind_saves_from_its_own_fields_and_reads_back(setup, client_for, kind, fields, params):
    client = client_for(setup.admin)
    page = client.get(reverse("settlement-rule-create") + f"?kind={kind}")
    assert page.status_code == 200 and 'data-testid="kind-fields"' in page.content.decode()
    assert 'name="params"' not in page.content.decode()
    response = client.post(reverse("settlement-rule-create"), {"name": f"规则 {kind}", "kind": kind, **COMMON,
                                                                **fields, "action": "save"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    rule = SettlementRule.objects.get(name=f"规则 {kind}")
    assert (rule.kind, rule.params) == (kind, params)
    form = RuleForm(initial=RuleForm.initial_of(rule), kind=kind)
    for key, value in fields.items():
        assert str(form.initial[key]) == str(value) or Decimal(str(form.initial[key])) == Decimal(value)
    edit = client.get(reverse("settlement-rule", args=[rule.pk]))
    assert edit.status_code == 200


BAD = [
    ("fixed", {}, "amount", "This field is required."),
    ("fixed", {"amount": "-1"}, "amount", "greater than or equal to 0"),
    ("fixed", {"amount": "1e12"}, "amount", "less than or equal to 100000000"),
    ("hourly", {"rate": "abc"}, "rate", "Enter a number."),
    ("milestones", {"m1_name": "开工", "m1_share": "30"}, None, "add up to 100%"),
    ("milestones", {"m1_name": "开工", "m1_share": "50", "m2_name": "开工", "m2_share": "50"}, None, "unique name"),
    ("milestones", {"m1_name": "x" * 41, "m1_share": "100"}, "m1_name", "at most 40 characters"),
    ("region_class", {}, None, "coefficient for region classes"),
    ("region_class", {"class_A": "11"}, "class_A", "less than or equal to 10"),
    ("altitude", {"above_m": "20000", "multiplier": "2"}, "above_m", "less than or equal to 8900"),
    ("altitude", {"above_m": "-500", "multiplier": "2"}, "above_m", "greater than or equal to -430"),
    ("surcharge", {"flag": "moon", "percent": "10"}, "flag", "Select a valid choice"),
    ("surcharge", {"flag": "night"}, "percent", "This field is required."),
    ("distance", {"base_km": "500"}, "per_km", "This field is required."),
    ("split", {"r1_role": "crew", "r1_weight": "0"}, None, "add up to zero"),
    ("split", {}, None, "between 1 and 10 roles"),
    ("rebate", {"period": "month", "basis": "amount", "mode": "retroactive", "t1_from": "0", "t1_percent": "2",
                "t2_from": "0", "t2_percent": "3"}, None, "ascending order"),
    ("rebate", {"period": "month", "basis": "count", "mode": "marginal", "t1_from": "0", "t1_percent": "2"},
     None, "can only be retroactive"),
    ("rebate", {"period": "year", "basis": "amount", "mode": "marginal", "t1_from": "0", "t1_percent": "2"},
     "period", "Select a valid choice"),
    ("first_order_bonus", {"period": "month", "threshold": "500000", "percent": "101"}, "percent",
     "less than or equal to 100"),
    ("target_bonus", {"period": "month", "party_kind": "martian", "target": "1", "percent": "5"}, "party_kind",
     "Select a valid choice"),
]


@pytest.mark.parametrize("kind, fields, field, message", BAD)
def test_bad_numbers_get_a_clear_message_and_nothing_is_saved(setup, client_for, kind, fields, field, message):
    client = client_for(setup.admin)
    client.cookies["django_language"] = "en"
    before = list(SettlementRule.objects.values_list("id", "params"))
    response = client.post(reverse("settlement-rule-create"), {"name": "坏规则", "kind": kind, **COMMON, **fields,
                                                                "action": "save"})
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.errors.get(field or "__all__", [])
    assert any(message in e for e in errors), form.errors
    assert list(SettlementRule.objects.values_list("id", "params")) == before


def test_a_rule_keeps_its_kind(setup, client_for):
    client = client_for(setup.admin)
    response = client.post(reverse("settlement-rule", args=[setup.urgent.pk]), {
        "name": setup.urgent.name, "kind": "fixed", "amount": "1", **COMMON, "action": "save"})
    assert response.status_code == 400
    assert SettlementRule.objects.get(pk=setup.urgent.pk).kind == "surcharge"


def test_new_rule_starts_with_the_kind_and_preview_uses_the_fields(setup, client_for):
    client = client_for(setup.admin)
    page = client.get(reverse("settlement-rule-create"))
    assert 'data-testid="rule-kinds"' in page.content.decode() and "?kind=split" in page.content.decode()
    assert client.get(reverse("settlement-rule-create") + "?kind=nonsense").status_code == 200  # the picker again


def test_params_initial_ignores_malformed_stored_rows():
    assert params_initial("split", {"roles": ["x", {"role": "crew", "weight": "1"}]}) == {
        "r2_role": "crew", "r2_weight": "1"}


def test_a_long_rule_keeps_every_row_through_the_form(setup, client_for):
    from settlement.services import rule_save

    tiers = [{"from": str(i * 1000), "percent": str(i)} for i in range(8)]
    rule = rule_save(tenant=setup.tenant, name="八档返利", kind="rebate",
                     params={"mode": "marginal", "basis": "amount", "tiers": tiers})
    client = client_for(setup.admin)
    page = client.get(reverse("settlement-rule", args=[rule.pk]))
    form = page.context["form"]
    assert "t8_from" in form.fields and "t10_from" in form.fields and "t11_from" not in form.fields
    data = {k: ("" if v is None else v) for k, v in form.initial.items()}
    data.update({"action": "save", "is_active": "on", "t9_from": "9000", "t9_percent": "9"})
    data.pop("exclusive", None)
    response = client.post(reverse("settlement-rule", args=[rule.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    assert len(SettlementRule.objects.get(pk=rule.pk).params["tiers"]) == 9
