"""Constraint failures read as field errors in words (issue 14, item 9): a won opportunity's
signed date shows in its date input and saves; one without a date, or a negative amount, is
refused under the field it concerns, and nothing is saved."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from scrm.models import Opportunity, Store
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, OpportunityFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def won(tenant_a):
    with tenant_scope(tenant_a):
        return OpportunityFactory(customer=CustomerFactory(tenant=tenant_a), title="中央空调采购", stage="won",
                                  signed_date=datetime.date(2026, 11, 3))


def _post(won, **over):
    return {"customer": won.customer_id, "title": won.title, "amount": "1200.00", "stage": "won",
            "signed_date": "2026-11-03", **over}


def test_signed_date_shows_in_the_date_input(won, admin_a, client_for):
    body = client_for(admin_a).get(reverse("opportunity-update", args=[won.pk])).content.decode()
    assert 'type="date" name="signed_date" value="2026-11-03"' in body


def test_won_opportunity_saves_with_its_date(won, admin_a, client_for):
    response = client_for(admin_a).post(reverse("opportunity-update", args=[won.pk]),
                                        _post(won, signed_date="2026-11-20"))
    assert response.status_code == 302
    with tenant_scope(won.tenant):
        assert Opportunity.objects.get(pk=won.pk).signed_date == datetime.date(2026, 11, 20)


@pytest.mark.parametrize("over,field,words", [
    ({"signed_date": ""}, "signed_date", "签约日期"),
    ({"signed_date": "2026-13-45"}, "signed_date", "有效的日期"),
    ({"amount": "-5"}, "amount", "0"),
])
def test_bad_input_is_a_field_error_and_nothing_is_saved(won, admin_a, client_for, over, field, words):
    response = client_for(admin_a).post(reverse("opportunity-update", args=[won.pk]), _post(won, **over),
                                        HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = response.content.decode()
    assert response.status_code == 400
    assert "opportunity_won_has_signed_date" not in body and "约束" not in body
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert words in " ".join(response.context["form"].errors[field])
    with tenant_scope(won.tenant):
        fresh = Opportunity.objects.get(pk=won.pk)
    assert (fresh.signed_date, fresh.amount) == (datetime.date(2026, 11, 3), Decimal("12800.00"))


def test_model_constraints_name_their_field(tenant_a):
    with tenant_scope(tenant_a):
        store = StoreFactory(tenant=tenant_a)
        store.latitude = Decimal("95")
        with pytest.raises(ValidationError) as caught:
            store.validate_constraints()
    assert list(caught.value.error_dict) == ["latitude"]
    with tenant_scope(tenant_a):
        assert Store.objects.get(pk=store.pk).latitude != Decimal("95")
