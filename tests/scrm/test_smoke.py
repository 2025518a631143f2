"""Pages a signed-in agent opens first."""

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory, RegionFactory, StoreFactory


@pytest.mark.django_db
def test_agent_sees_home_and_customers(tenant_a, agent_a, client_for, scope_a):
    region = RegionFactory(tenant=tenant_a, name="华东")
    store = StoreFactory(tenant=tenant_a, region=region)
    CustomerFactory(tenant=tenant_a, name="张三", region=region, store=store)
    client = client_for(agent_a)
    for name in ["home", "customer-list", "opportunity-list", "store-list", "region-list", "customer-create"]:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
    assert "张三" in client.get(reverse("customer-list")).content.decode()
