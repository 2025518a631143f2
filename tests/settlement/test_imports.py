"""Price books and rules export and import back (django-import-export files): a preview lists
every wrong row, and nothing is written while any row is wrong — missing, malformed, oversized
and cross-tenant input included."""

import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scrm.models import Role
from scrm.tenancy import tenant_scope
from settlement.imports import dataset_load, prices_import, rules_import
from settlement.models import ServiceItem, ServicePrice, SettlementRule
from tests.conftest import make_member

pytestmark = pytest.mark.django_db


def _csv(text):
    return dataset_load(content=text.encode(), filename="x.csv")


def _snapshot():
    return (sorted(ServicePrice.objects.values_list("item__code", "price", "effective_from")),
            sorted(SettlementRule.objects.values_list("name", "kind", "params", "priority", "exclusive")))


def test_prices_round_trip_and_import(setup):
    from settlement.resources import ServicePriceResource
    from settlement.selectors import price_rows

    exported = ServicePriceResource().export(queryset=price_rows()).export("csv")
    assert "repair,上门维修,次,200.00,2026-01-01" in exported
    outcome = prices_import(tenant=setup.tenant, dataset=_csv(exported), dry_run=False)
    assert (outcome.errors, outcome.unchanged, outcome.written) == ([], 1, True)
    text = ("item,price,effective_from,name\nrepair,220.00,2027-01-01,\n"
            "install,300,2026-06-01,空调安装\nrepair,200.00,2026-01-01,\n")
    preview = prices_import(tenant=setup.tenant, dataset=_csv(text), dry_run=True)
    assert (preview.new, preview.unchanged, preview.errors, preview.written) == (2, 1, [], False)
    assert not ServiceItem.objects.filter(code="install").exists()  # a preview writes nothing
    done = prices_import(tenant=setup.tenant, dataset=_csv(text), dry_run=False)
    assert done.written and ServiceItem.objects.get(code="install").name == "空调安装"
    assert ServicePrice.objects.get(item__code="repair", effective_from=date(2027, 1, 1)).price == Decimal("220.00")


@pytest.mark.parametrize("rows, message", [
    ("repair,-5,2027-01-01", "cannot be negative"),
    ("repair,abc,2027-01-01", "must be a number"),
    ("repair,,2027-01-01", "“price” is empty"),
    ("repair,1.234,2027-01-01", "at most two decimals"),
    ("repair,1e12,2027-01-01", "below 100,000,000"),
    ("repair,10,31/01/2027", "must be a date"),
    ("repair,10,", "“effective_from” is empty"),
    ("bad code!,10,2027-01-01", "code"),
    ("repair,10,2027-01-01\n" + "x" * 5000 + ",10,2027-01-01", "longer than 4000"),
])
def test_a_wrong_price_row_writes_no_row(setup, rows, message):
    before = _snapshot()
    text = "item,price,effective_from\ninstall,300,2026-06-01\n" + rows + "\n"
    outcome = prices_import(tenant=setup.tenant, dataset=_csv(text), dry_run=False)
    assert not outcome.written and any(message in e for e in outcome.errors), outcome.errors
    assert outcome.errors[0].startswith("Row ")
    assert _snapshot() == before and not ServiceItem.objects.filter(code="install").exists()


def test_missing_columns_and_unreadable_files(setup):
    assert prices_import(tenant=setup.tenant, dataset=_csv("item,price\nrepair,1\n"),
                         dry_run=False).errors == ["Missing columns: effective_from."]
    assert rules_import(tenant=setup.tenant, dataset=_csv("name\nx\n"), dry_run=False).errors == [
        "Missing columns: kind, params."]
    from django.core.exceptions import ValidationError

    for content, name, message in [(b"a,b", "x.pdf", "Upload a .csv"), (b"not a zip", "x.xlsx", "could not be read"),
                                   (b"\xff\xfe\x00", "x.csv", "could not be read"),
                                   (b"a" * (1024 * 1024 + 1), "x.csv", "larger than 1 MB"),
                                   (b"", "x.csv", "no header row"),
                                   (("h\n" + "1\n" * 2001).encode(), "x.csv", "At most 2000 rows")]:
        with pytest.raises(ValidationError) as err:
            dataset_load(content=content, filename=name)
        assert message in str(err.value)


def test_rules_round_trip_and_import(setup):
    from settlement.resources import SettlementRuleResource
    from settlement.selectors import rule_list

    exported = SettlementRuleResource().export(queryset=rule_list()).export("csv")
    assert '"{""flag"": ""urgent"", ""percent"": ""30""}"' in exported
    before = _snapshot()
    outcome = rules_import(tenant=setup.tenant, dataset=_csv(exported), dry_run=False)
    assert (outcome.errors, outcome.unchanged, outcome.written) == ([], 5, True)
    assert _snapshot() == before
    text = ('name,kind,params,condition,priority,exclusive\n'
            '周末 +10%,surcharge,"{""flag"": ""weekend"", ""percent"": 10}",,100,0\n'
            '加急 +30%,surcharge,"{""flag"": ""urgent"", ""percent"": 35}",,100,0\n')
    preview = rules_import(tenant=setup.tenant, dataset=_csv(text), dry_run=True)
    assert (preview.new, preview.updated, preview.written) == (1, 1, False)
    assert _snapshot() == before
    assert rules_import(tenant=setup.tenant, dataset=_csv(text), dry_run=False).written
    assert SettlementRule.objects.get(name="加急 +30%").params == {"flag": "urgent", "percent": "35"}
    assert SettlementRule.objects.filter(name="周末 +10%").exists()


@pytest.mark.parametrize("row, message", [
    ('x,surcharge,"{""flag"": ""moon"", ""percent"": 10}",,100,0', "Choose what the surcharge is for"),
    ('x,surcharge,{not json,,100,0', "not valid JSON"),
    ('x,surcharge,"[1, 2]",,100,0', "must be a JSON object"),
    ('x,teleport,"{}",,100,0', "Unknown rule kind"),
    (',surcharge,"{""flag"": ""night"", ""percent"": 10}",,100,0', "Give the rule a name"),
    ('x,surcharge,"{""flag"": ""night"", ""percent"": 10}",,abc,0', "must be a number"),
    ('x,surcharge,"{""flag"": ""night"", ""percent"": 10}",,5000,0', "whole number from 0 to 1000"),
    ('x,surcharge,"{""flag"": ""night"", ""percent"": 10}",,100,maybe', "must be 1 or 0"),
    ('x,rebate,"{""mode"": ""marginal"", ""tiers"": [{""from"": 0, ""percent"": 1}, '
     '{""from"": 0, ""percent"": 2}]}",,100,0', "ascending order"),
    ('x,split,"{""roles"": [{""role"": ""crew"", ""weight"": 0}]}",,100,0', "add up to zero"),
    ('x,surcharge,"{""flag"": ""night"", ""percent"": 10}",'
     '"{""field"": ""data.nope"", ""op"": ""="", ""value"": 1}",100,0', "no published template has"),
    ('x,altitude,"{""above_m"": 20000, ""multiplier"": 2}",,100,0', "cannot be above"),
])
def test_a_wrong_rule_row_writes_no_rule(setup, row, message):
    before = _snapshot()
    text = ('name,kind,params,condition,priority,exclusive\n'
            '周末 +10%,surcharge,"{""flag"": ""weekend"", ""percent"": 10}",,100,0\n' + row + "\n")
    outcome = rules_import(tenant=setup.tenant, dataset=_csv(text), dry_run=False)
    assert not outcome.written and any(message in e for e in outcome.errors), outcome.errors
    assert _snapshot() == before


def test_two_exclusive_rules_in_one_file_are_refused(setup):
    text = ('name,kind,params,exclusive\n'
            '独占甲,surcharge,"{""flag"": ""night"", ""percent"": 10}",1\n'
            '独占乙,surcharge,"{""flag"": ""night"", ""percent"": 20}",1\n')
    outcome = rules_import(tenant=setup.tenant, dataset=_csv(text), dry_run=False)
    assert outcome.errors and "Row 2" in outcome.errors[0] and "also exclusive" in outcome.errors[0]
    assert not SettlementRule.objects.filter(name__startswith="独占").exists()


def test_import_stays_in_its_tenant(setup, tenant_b):
    """Tenant B importing A's rule names and item codes gets rows of its own; A is unchanged."""
    before = _snapshot()
    with tenant_scope(tenant_b):
        done = prices_import(tenant=tenant_b, dataset=_csv("item,price,effective_from\nrepair,1,2026-01-01\n"),
                             dry_run=False)
        assert done.written and done.new == 1
        assert ServicePrice.objects.get().price == Decimal("1.00")
        text = 'name,kind,params\n加急 +30%,surcharge,"{""flag"": ""urgent"", ""percent"": 99}"\n'
        assert rules_import(tenant=tenant_b, dataset=_csv(text), dry_run=False).new == 1
    with tenant_scope(setup.tenant):
        assert _snapshot() == before


def test_pages_preview_then_import_and_export(setup, client_for):
    manager = make_member(setup.tenant, Role.MANAGER, "jingli")
    client = client_for(manager)
    client.cookies["django_language"] = "en"  # the assertions read the English messages
    url = reverse("settlement-prices-import")
    assert client.get(url).status_code == 200
    good = b"item,price,effective_from\ninstall,300,2026-06-01\n"
    page = client.post(url, {"file": SimpleUploadedFile("p.csv", good), "action": "preview"})
    assert page.status_code == 200 and "every row is right" in page.content.decode()
    assert not ServiceItem.objects.filter(code="install").exists()
    bad = b"item,price,effective_from\ninstall,300,2026-06-01\nrepair,-1,2026-06-01\n"
    page = client.post(url, {"file": SimpleUploadedFile("p.csv", bad), "action": "import"})
    assert page.status_code == 400 and "Row 2" in page.content.decode()
    assert not ServiceItem.objects.filter(code="install").exists()
    page = client.post(url, {"file": SimpleUploadedFile("p.pdf", good), "action": "import"})
    assert page.status_code == 400 and "Upload a .csv" in page.content.decode()
    assert client.post(url, {"action": "import"}).status_code == 400  # no file
    done = client.post(url, {"file": SimpleUploadedFile("p.csv", good), "action": "import"})
    assert done.status_code == 302 and ServiceItem.objects.filter(code="install").exists()
    xlsx = client.get(reverse("settlement-rules-export") + "?format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(1, 1).value == "name" and sheet.max_row == 6
    csv = client.get(reverse("settlement-prices-export") + "?format=csv")
    assert csv["Content-Type"].startswith("text/csv") and "repair" in csv.content.decode("utf-8-sig")
    back = client.post(reverse("settlement-rules-import"),
                       {"file": SimpleUploadedFile("r.xlsx", xlsx.content), "action": "preview"})
    assert back.status_code == 200 and "5 unchanged" in back.content.decode()
    assert client.get(reverse("settlement-prices-export") + "?format=pdf").status_code == 404
    engineer = client_for(setup.engineer)
    assert engineer.get(url).status_code == 403
    assert engineer.post(url, {"file": SimpleUploadedFile("p.csv", good), "action": "import"}).status_code == 403
