"""The rule form's condition builder: rows → the structured JSON workflow/conditions.py
evaluates, a stored condition → rows when editing (nested ones stay JSON), and bad rows refused
each with its own message while nothing is saved."""

import pytest
from django.urls import reverse

from settlement import condition_builder as cb
from settlement.forms import RuleForm
from settlement.models import SettlementRule
from workflow.conditions import condition_check, condition_eval

pytestmark = pytest.mark.django_db

BASE = {"name": "高原夜间", "kind": "surcharge", "flag": "night", "percent": "10", "priority": "100",
        "is_active": "on", "action": "save"}


def _rows(*rows, join="all"):
    out = {"cond_join": join}
    for i, (field, op, value) in enumerate(rows, start=1):
        out.update({f"c{i}_field": field, f"c{i}_op": op, f"c{i}_value": value})
    return out


def test_the_form_offers_the_mapped_settlement_inputs(setup):
    choices = dict(RuleForm(kind="surcharge").fields["c1_field"].choices)
    for path in ("region.settlement_class", "customer.tier", "priority", "data.altitude", "data.night",
                 "data.item", "data.km", "data.hours", "data.fee"):
        assert path in choices
    assert "data.designer" not in choices  # a role names a person, not a value to compare


GOOD = [
    ([("region.settlement_class", "=", "a")], "all",
     {"field": "region.settlement_class", "op": "=", "value": "A"}),
    ([("data.altitude", ">", "3000"), ("data.night", "=", "true")], "all",
     {"all": [{"field": "data.altitude", "op": ">", "value": 3000},
              {"field": "data.night", "op": "=", "value": True}]}),
    ([("customer.tier", "in", "vip, gold，silver"), ("data.km", ">=", "500.5"), ("data.item", "not_empty", "")], "any",
     {"any": [{"field": "customer.tier", "op": "in", "value": ["vip", "gold", "silver"]},
              {"field": "data.km", "op": ">=", "value": 500.5}, {"field": "data.item", "op": "not_empty"}]}),
]


@pytest.mark.parametrize("rows, join, condition", GOOD, ids=["one-row", "all", "any"])
def test_rows_save_the_structured_json_and_read_back(setup, client_for, rows, join, condition):
    response = client_for(setup.admin).post(reverse("settlement-rule-create"), {**BASE, **_rows(*rows, join=join)})
    assert response.status_code == 302, response.content.decode()[-3000:]
    rule = SettlementRule.objects.get(name="高原夜间")
    assert rule.condition == condition
    condition_check(rule.condition)  # the evaluator's own check accepts what the builder made
    form = RuleForm(initial=RuleForm.initial_of(rule), kind="surcharge")
    assert not form.condition_nested and form.initial["condition"] == ""
    assert form.initial["cond_join"] == join
    for i, (field, op, _value) in enumerate(rows, start=1):
        assert (form.initial[f"c{i}_field"], form.initial[f"c{i}_op"]) == (field, op)
    # the rows read back post the same condition again
    again = {k: v for k, v in form.initial.items() if k.startswith("c") and k[1:2].isdigit()}
    assert cb.rows_condition(join, [cb.row_condition(again[f"c{i}_field"], again[f"c{i}_op"],
                                                     again[f"c{i}_value"], form.catalogue)
                                    for i in range(1, len(rows) + 1)]) == condition
    page = client_for(setup.admin).get(reverse("settlement-rule", args=[rule.pk]))
    assert page.status_code == 200 and 'data-testid="condition-nested"' not in page.content.decode()


def test_built_condition_evaluates_as_meant():
    catalogue = cb.field_catalogue({"altitude": "altitude_m", "night": "night"})
    condition = cb.rows_condition("all", [cb.row_condition("data.altitude", ">", "3000", catalogue),
                                          cb.row_condition("data.night", "=", "yes", catalogue)])
    assert condition_eval(condition, {"data": {"altitude": 4200, "night": True}})
    assert not condition_eval(condition, {"data": {"altitude": 2800, "night": True}})
    assert not condition_eval(condition, {"data": {"altitude": 4200, "night": False}})


def test_no_rows_means_every_ticket(setup, client_for):
    response = client_for(setup.admin).post(reverse("settlement-rule-create"), {**BASE, **_rows()})
    assert response.status_code == 302
    assert SettlementRule.objects.get(name="高原夜间").condition == {}


def test_a_nested_condition_stays_in_the_json_editor_with_a_note(setup, client_for):
    nested = {"any": [{"all": [{"field": "data.altitude", "op": ">", "value": 3000}]},
                      {"not": {"field": "priority", "op": "=", "value": "low"}}]}
    rule = SettlementRule.objects.get(pk=setup.night.pk)
    rule.condition = nested
    rule.save(update_fields=["condition"])
    form = RuleForm(initial=RuleForm.initial_of(rule), kind="surcharge")
    assert form.condition_nested and '"any"' in form.initial["condition"]
    assert not form.initial.get("c1_field")
    client = client_for(setup.admin)
    page = client.get(reverse("settlement-rule", args=[rule.pk])).content.decode()
    assert 'data-testid="condition-nested"' in page
    # saved back unchanged through the JSON editor
    post = {**BASE, "name": rule.name, "flag": "night", "percent": "20", "condition": form.initial["condition"]}
    assert client.post(reverse("settlement-rule", args=[rule.pk]), post).status_code == 302
    rule.refresh_from_db()
    assert rule.condition == nested


BAD = [
    ([("data.nope", "=", "1")], "Select a valid choice"),
    ([("priority", "between", "1")], "Select a valid choice"),
    ([("data.altitude", ">", "high")], "is not a number"),
    ([("data.altitude", ">", "1e40")], "not a number in range"),
    ([("data.night", "=", "maybe")], "Enter true or false"),
    ([("region.settlement_class", "=", "D")], "A, B or C"),
    ([("customer.tier", ">", "vip")], "does not apply"),
    ([("customer.tier", "=", "")], "Enter a value"),
    ([("customer.tier", "empty", "x")], "takes no value"),
    ([("customer.tier", "=", "x" * 201)], "at most 200 characters"),
    ([("customer.tier", "in", ",".join(["v"] * 51))], "between 1 and 50 values"),
    ([("", "=", "vip")], "Unknown field"),
    ([("customer.tier", "", "vip")], "Unknown operator"),
]


@pytest.mark.parametrize("rows, message", BAD, ids=[m for _r, m in BAD])
def test_a_bad_row_gets_its_own_message_and_nothing_is_saved(setup, client_for, rows, message):
    before = SettlementRule.objects.count()
    good = ("customer.tier", "=", "vip")
    client = client_for(setup.admin)
    client.cookies["django_language"] = "en"
    response = client.post(reverse("settlement-rule-create"), {**BASE, **_rows(good, *rows)})
    assert response.status_code == 400
    assert SettlementRule.objects.count() == before
    form = response.context["form"]
    assert not form.errors.get("c1_value") and not form.errors.get("c1_field")
    assert any(message in e for e in form.errors.get("c2_value", []) + form.errors.get("c2_field", [])
               + form.errors.get("c2_op", [])), form.errors


def test_too_many_rows_and_rows_with_json_are_refused(setup, client_for):
    client = client_for(setup.admin)
    client.cookies["django_language"] = "en"
    before = SettlementRule.objects.count()
    six = _rows(*[("customer.tier", "=", f"t{i}") for i in range(6)])
    response = client.post(reverse("settlement-rule-create"), {**BASE, **six})
    assert response.status_code == 400 and "at most 5 rows" in response.content.decode()
    both = {**BASE, **_rows(("customer.tier", "=", "vip")),
            "condition": '{"field": "priority", "op": "=", "value": "x"}'}
    response = client.post(reverse("settlement-rule-create"), both)
    assert response.status_code == 400 and "not both" in response.content.decode()
    assert SettlementRule.objects.count() == before


def test_the_rule_page_shows_the_rows(setup, client_for):
    page = client_for(setup.admin).get(reverse("settlement-rule-create") + "?kind=surcharge").content.decode()
    assert page.count('data-testid="condition-row"') == cb.MAX_ROWS
    assert 'data-testid="condition-json"' in page and "<script>" not in page
