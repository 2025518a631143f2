"""scrm.selectors visibility: who sees which regions, stores and customers, per role, grant and tenant."""

import pytest
from django.contrib.auth import get_user_model

from scrm import selectors, services
from scrm.models import Role, StaffProfile
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import CustomerFactory, OpportunityFactory, RegionFactory, StoreFactory, UserFactory

User = get_user_model()

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(tenant_a, tenant_b):
    """Tenant A: 华东 > 上海 > 浦东, and 华北 beside it; a store and customers in each.
    Tenant B: one region, store and customer."""
    with tenant_scope(tenant_a):
        east = RegionFactory(tenant=tenant_a, name="华东", code="east")
        shanghai = RegionFactory(tenant=tenant_a, name="上海", code="sh", parent=east)
        pudong = RegionFactory(tenant=tenant_a, name="浦东", code="pd", parent=shanghai)
        north = RegionFactory(tenant=tenant_a, name="华北", code="north")
        stores = {
            "east": StoreFactory(tenant=tenant_a, region=east, code="s-east"),
            "sh": StoreFactory(tenant=tenant_a, region=shanghai, code="s-sh"),
            "pd": StoreFactory(tenant=tenant_a, region=pudong, code="s-pd"),
            "north": StoreFactory(tenant=tenant_a, region=north, code="s-north"),
        }
        customers = {key: CustomerFactory(tenant=tenant_a, name=f"c-{key}", region=s.region, store=s)
                     for key, s in stores.items()}
        customers["sh-nostore"] = CustomerFactory(tenant=tenant_a, name="c-sh-nostore", region=shanghai)
        customers["north-nostore"] = CustomerFactory(tenant=tenant_a, name="c-north-nostore", region=north)
        customers["nowhere"] = CustomerFactory(tenant=tenant_a, name="c-nowhere")
        for customer in customers.values():
            OpportunityFactory(customer=customer, title=f"o-{customer.name}")
    with tenant_scope(tenant_b):
        region_b = RegionFactory(tenant=tenant_b, name="B区", code="b")
        store_b = StoreFactory(tenant=tenant_b, region=region_b, code="s-b")
        customer_b = CustomerFactory(tenant=tenant_b, name="c-b", region=region_b, store=store_b)
        OpportunityFactory(customer=customer_b, title="o-c-b")
    return {
        "regions": {"east": east, "sh": shanghai, "pd": pudong, "north": north, "b": region_b},
        "stores": {**stores, "b": store_b},
        "customers": {**customers, "b": customer_b},
    }


def names(queryset):
    return sorted(obj.name for obj in queryset)


def codes(queryset):
    return sorted(obj.code for obj in queryset)


ALL_A_CUSTOMERS = ["c-east", "c-north", "c-north-nostore", "c-nowhere", "c-pd", "c-sh", "c-sh-nostore"]


@pytest.mark.parametrize("role_fixture", ["admin_a", "manager_a", "agent_a", "finance_a"])
def test_tenant_wide_roles_see_all_of_their_tenant(request, org, tenant_a, role_fixture):
    user = request.getfixturevalue(role_fixture)
    with tenant_scope(tenant_a):
        assert names(selectors.visible_customers(user=user)) == ALL_A_CUSTOMERS
        assert codes(selectors.visible_stores(user=user)) == ["s-east", "s-north", "s-pd", "s-sh"]
        assert codes(selectors.visible_regions(user=user)) == ["east", "north", "pd", "sh"]
        assert selectors.visible_opportunities(user=user).count() == len(ALL_A_CUSTOMERS)


@pytest.mark.parametrize("role_fixture", ["admin_a", "manager_a", "agent_a", "finance_a"])
def test_tenant_wide_roles_see_nothing_of_the_other_tenant(request, org, tenant_b, role_fixture):
    user = request.getfixturevalue(role_fixture)
    with tenant_scope(tenant_b):
        assert not selectors.visible_customers(user=user).exists()
        assert not selectors.visible_stores(user=user).exists()
        assert not selectors.visible_regions(user=user).exists()
        assert not selectors.visible_opportunities(user=user).exists()


def test_admin_of_b_sees_only_b(org, tenant_a, tenant_b, admin_b):
    with tenant_scope(tenant_b):
        assert names(selectors.visible_customers(user=admin_b)) == ["c-b"]
        assert codes(selectors.visible_stores(user=admin_b)) == ["s-b"]
        assert codes(selectors.visible_regions(user=admin_b)) == ["b"]
    with tenant_scope(tenant_a):
        assert not selectors.visible_customers(user=admin_b).exists()


def test_regional_manager_without_grants_sees_nothing(org, tenant_a, regional_manager_a):
    with tenant_scope(tenant_a):
        assert not selectors.visible_customers(user=regional_manager_a).exists()
        assert not selectors.visible_stores(user=regional_manager_a).exists()
        assert not selectors.visible_regions(user=regional_manager_a).exists()


def test_region_grant_covers_the_region_and_its_sub_regions_only(org, tenant_a, regional_manager_a):
    user = regional_manager_a
    services.region_grant(user=user, region=org["regions"]["sh"])
    with tenant_scope(tenant_a):
        assert codes(selectors.visible_stores(user=user)) == ["s-pd", "s-sh"]
        assert names(selectors.visible_customers(user=user)) == ["c-pd", "c-sh", "c-sh-nostore"]
        assert codes(selectors.visible_regions(user=user)) == ["pd", "sh"]
        assert sorted(o.title for o in selectors.visible_opportunities(user=user)) == [
            "o-c-pd", "o-c-sh", "o-c-sh-nostore",
        ]
        assert selectors.customer_get(user=user, pk=org["customers"]["east"].pk) is None
        assert selectors.store_get(user=user, pk=org["stores"]["north"].pk) is None


def test_region_grant_on_the_top_region_covers_the_whole_tree(org, tenant_a, regional_manager_a):
    services.region_grant(user=regional_manager_a, region=org["regions"]["east"])
    with tenant_scope(tenant_a):
        assert codes(selectors.visible_stores(user=regional_manager_a)) == ["s-east", "s-pd", "s-sh"]
        assert names(selectors.visible_customers(user=regional_manager_a)) == ["c-east", "c-pd", "c-sh", "c-sh-nostore"]


def test_region_revoke_takes_it_away(org, tenant_a, regional_manager_a):
    services.region_grant(user=regional_manager_a, region=org["regions"]["sh"])
    services.region_revoke(user=regional_manager_a, region=org["regions"]["sh"])
    with tenant_scope(tenant_a):
        assert not selectors.visible_stores(user=regional_manager_a).exists()


def test_store_grant_gives_exactly_one_store(org, tenant_a, regional_manager_a):
    user = regional_manager_a
    services.store_grant(user=user, store=org["stores"]["north"])
    with tenant_scope(tenant_a):
        assert codes(selectors.visible_stores(user=user)) == ["s-north"]
        # the store's customers; not the region's store-less customers (the region is not granted)
        assert names(selectors.visible_customers(user=user)) == ["c-north"]
        assert codes(selectors.visible_regions(user=user)) == ["north"]


def test_engineer_sees_their_home_store(org, tenant_a, engineer_a):
    with tenant_scope(tenant_a):
        StaffProfile.objects.filter(user=engineer_a).update(home_store=org["stores"]["east"])
        assert codes(selectors.visible_stores(user=engineer_a)) == ["s-east"]
        assert names(selectors.visible_customers(user=engineer_a)) == ["c-east"]
        assert codes(selectors.visible_regions(user=engineer_a)) == ["east"]


def test_engineer_without_home_store_sees_nothing(org, tenant_a, engineer_a):
    with tenant_scope(tenant_a):
        assert not selectors.visible_stores(user=engineer_a).exists()
        assert not selectors.visible_customers(user=engineer_a).exists()


def test_grants_in_another_tenant_do_not_reach_into_this_one(org, tenant_a, tenant_b):
    user = make_member(tenant_b, Role.REGIONAL_MANAGER, "rm_b")
    services.region_grant(user=user, region=org["regions"]["b"])
    with tenant_scope(tenant_b):
        assert names(selectors.visible_customers(user=user)) == ["c-b"]
    with tenant_scope(tenant_a):
        assert not selectors.visible_customers(user=user).exists()
        assert not selectors.visible_stores(user=user).exists()
        assert not selectors.visible_regions(user=user).exists()


def test_user_without_membership_sees_nothing(org, tenant_a):
    user = UserFactory()
    with tenant_scope(tenant_a):
        assert not selectors.visible_customers(user=user).exists()
        assert not selectors.visible_stores(user=user).exists()
        assert not selectors.visible_regions(user=user).exists()
        assert not selectors.visible_opportunities(user=user).exists()
        assert user.has_perm("scrm.view_customer") is False


def test_user_without_membership_but_with_a_grant_sees_nothing(org, tenant_a):
    user = UserFactory()
    services.region_grant(user=user, region=org["regions"]["east"])
    with tenant_scope(tenant_a):
        assert not selectors.visible_customers(user=user).exists()
        assert not selectors.visible_stores(user=user).exists()


def test_inactive_membership_sees_nothing(org, tenant_a, agent_a):
    from scrm.models import Membership

    with tenant_scope(tenant_a):
        Membership.objects.filter(user=agent_a).update(is_active=False)
        user = User.objects.get(pk=agent_a.pk)
        assert not selectors.visible_customers(user=user).exists()
        assert user.has_perm("scrm.view_customer") is False


def test_superuser_sees_the_whole_tenant_in_scope(org, tenant_a, tenant_b):
    root = UserFactory(is_superuser=True, is_staff=True)
    with tenant_scope(tenant_a):
        assert names(selectors.visible_customers(user=root)) == ALL_A_CUSTOMERS
    with tenant_scope(tenant_b):
        assert names(selectors.visible_customers(user=root)) == ["c-b"]


def test_one_user_admin_in_a_and_engineer_in_b(org, tenant_a, tenant_b):
    user = make_member(tenant_a, Role.ADMIN, "dual")
    with tenant_scope(tenant_b):
        services.membership_set(tenant=tenant_b, user=user, role=Role.ENGINEER)
        StaffProfile.objects.create(tenant=tenant_b, user=user, display_name="dual", home_store=org["stores"]["b"])

    user = User.objects.get(pk=user.pk)
    with tenant_scope(tenant_a):
        assert user.has_perm("scrm.add_customer") is True
        assert user.has_perm("scrm.delete_customer") is True
        assert names(selectors.visible_customers(user=user)) == ALL_A_CUSTOMERS
    with tenant_scope(tenant_b):
        assert user.has_perm("scrm.add_customer") is False
        assert user.has_perm("scrm.view_customer") is True
        assert names(selectors.visible_customers(user=user)) == ["c-b"]

    # fresh user objects, B first, so neither answer can come from the other tenant's cache
    user = User.objects.get(pk=user.pk)
    with tenant_scope(tenant_b):
        assert user.has_perm("scrm.add_customer") is False
    user = User.objects.get(pk=user.pk)
    with tenant_scope(tenant_a):
        assert user.has_perm("scrm.add_customer") is True


def test_no_permissions_outside_a_scope(admin_a):
    user = User.objects.get(pk=admin_a.pk)
    assert user.has_perm("scrm.view_customer") is False
    assert user.get_all_permissions() == set()


@pytest.mark.parametrize(
    ("role_fixture", "perm", "expected"),
    [
        ("admin_a", "scrm.delete_customer", True),
        ("manager_a", "scrm.delete_customer", False),
        ("manager_a", "scrm.add_store", True),
        ("regional_manager_a", "scrm.add_store", False),
        ("regional_manager_a", "scrm.change_store", True),
        ("agent_a", "scrm.add_customer", True),
        ("agent_a", "scrm.add_store", False),
        ("engineer_a", "scrm.view_customer", True),
        ("engineer_a", "scrm.add_customer", False),
        ("finance_a", "scrm.view_opportunity", True),
        ("finance_a", "scrm.change_opportunity", False),
    ],
)
def test_role_permissions(request, tenant_a, role_fixture, perm, expected):
    user = request.getfixturevalue(role_fixture)
    with tenant_scope(tenant_a):
        assert user.has_perm(perm) is expected
