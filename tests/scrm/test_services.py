"""scrm.services: customer, opportunity, region, store and staff writes, and what they refuse."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from scrm import services
from scrm.models import (
    Customer,
    CustomerTier,
    Membership,
    Opportunity,
    OpportunityStage,
    Region,
    Role,
    StaffProfile,
    Store,
)
from scrm.tenancy import tenant_scope
from tests.factories import (
    CustomerFactory,
    OpportunityFactory,
    RegionFactory,
    StoreFactory,
    TagFactory,
    TeamFactory,
    UserFactory,
)

User = get_user_model()

pytestmark = pytest.mark.django_db


def error_dict(excinfo):
    return excinfo.value.message_dict


# --- customers ------------------------------------------------------------------------------


def test_customer_create_normalises_phone_and_takes_region_from_store(scope_a, agent_a):
    region = RegionFactory(tenant=scope_a, name="华东")
    store = StoreFactory(tenant=scope_a, region=region)
    tag = TagFactory(tenant=scope_a, name="老客户")

    customer = services.customer_create(
        tenant=scope_a, name="张三", phone="+86 138-0013-8000", store=store, tags=[tag], tier=CustomerTier.VIP,
        owner=agent_a,
    )

    customer.refresh_from_db()
    assert customer.tenant_id == scope_a.pk
    assert customer.phone == "13800138000"
    assert customer.store_id == store.pk
    assert customer.region_id == region.pk
    assert customer.tier == "vip"
    assert customer.owner_id == agent_a.pk
    assert list(customer.tags.values_list("name", flat=True)) == ["老客户"]
    assert Customer.objects.count() == 1


def test_customer_create_keeps_a_matching_region_and_store(scope_a):
    region = RegionFactory(tenant=scope_a)
    store = StoreFactory(tenant=scope_a, region=region)
    customer = services.customer_create(tenant=scope_a, name="李四", phone="13900001111", region=region, store=store)
    assert (customer.region_id, customer.store_id) == (region.pk, store.pk)


def test_customer_create_without_phone_is_allowed_by_the_service(scope_a):
    customer = services.customer_create(tenant=scope_a, name="企业微信客户", wecom_external_userid="wm-1")
    assert customer.phone == ""
    assert Customer.objects.filter(wecom_external_userid="wm-1").count() == 1


def test_customer_create_refuses_unknown_fields(scope_a):
    with pytest.raises(TypeError, match="unknown fields"):
        services.customer_create(tenant=scope_a, name="王五", phone="13900001111", tenant_id=1)
    assert Customer.objects.count() == 0


def test_duplicate_phone_names_the_existing_customer_and_writes_nothing(scope_a):
    CustomerFactory(tenant=scope_a, name="老张", phone="13800138000")
    before = Customer.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        services.customer_create(tenant=scope_a, name="新张", phone="138 0013 8000")

    errors = error_dict(excinfo)
    assert list(errors) == ["phone"]
    assert "老张" in errors["phone"][0]
    assert "13800138000" in errors["phone"][0]
    assert Customer.objects.count() == before
    assert not Customer.objects.filter(name="新张").exists()


def test_customer_create_inside_a_transaction_takes_no_savepoint_and_a_duplicate_leaves_it_usable(scope_a):
    # Intake creates customers inside its own transaction and reads the winner after a refusal.
    CustomerFactory(tenant=scope_a, name="老张", phone="13800138000")
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            created = services.customer_create(tenant=scope_a, name="李梅", phone="13900001234")
        assert not [q for q in captured.captured_queries if "SAVEPOINT" in q["sql"]]
        with pytest.raises(ValidationError) as excinfo:
            services.customer_create(tenant=scope_a, name="新张", phone="13800138000")
        assert "老张" in error_dict(excinfo)["phone"][0]
        assert Customer.objects.filter(phone="13800138000").get().name == "老张"
    assert sorted(Customer.objects.values_list("name", flat=True)) == sorted(["老张", "李梅"])
    assert created.pk == Customer.objects.get(name="李梅").pk


def test_customer_create_with_tags_is_all_or_nothing(scope_a):
    tag = TagFactory(tenant=scope_a, name="VIP")
    customer = services.customer_create(tenant=scope_a, name="周杰", phone="13900005678", tags=[tag])
    assert list(customer.tags.all()) == [tag]


def test_duplicate_phone_in_another_tenant_is_fine(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        CustomerFactory(tenant=tenant_b, name="乙客户", phone="13800138000")
    with tenant_scope(tenant_a):
        customer = services.customer_create(tenant=tenant_a, name="甲客户", phone="13800138000")
        assert Customer.objects.get().pk == customer.pk


def test_duplicate_wecom_and_openid_are_refused(scope_a):
    CustomerFactory(tenant=scope_a, wecom_external_userid="wm-1", wechat_openid="oid-1")
    with pytest.raises(ValidationError) as excinfo:
        services.customer_create(
            tenant=scope_a, name="重复", phone="13900001111", wecom_external_userid="wm-1", wechat_openid="oid-1"
        )
    assert set(error_dict(excinfo)) == {"wecom_external_userid", "wechat_openid"}
    assert Customer.objects.count() == 1


def test_customer_update_keeps_its_own_phone(scope_a):
    customer = CustomerFactory(tenant=scope_a, name="老张", phone="13800138000")
    services.customer_update(customer=customer, name="老张(改)", phone="13800138000")
    customer.refresh_from_db()
    assert customer.name == "老张(改)"
    assert customer.phone == "13800138000"


def test_customer_update_to_another_customers_phone_is_refused(scope_a):
    CustomerFactory(tenant=scope_a, name="甲", phone="13800138000")
    other = CustomerFactory(tenant=scope_a, name="乙", phone="13900001111")
    with pytest.raises(ValidationError) as excinfo:
        services.customer_update(customer=other, phone="13800138000")
    assert "甲" in error_dict(excinfo)["phone"][0]
    other.refresh_from_db()
    assert other.phone == "13900001111"


def test_bad_phone_is_a_phone_field_error(scope_a):
    with pytest.raises(ValidationError) as excinfo:
        services.customer_create(tenant=scope_a, name="张三", phone="12812345678")
    assert list(error_dict(excinfo)) == ["phone"]
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("field", ["region", "store", "tags"])
def test_other_tenants_region_store_or_tags_are_refused(tenant_a, tenant_b, field):
    with tenant_scope(tenant_b):
        region_b = RegionFactory(tenant=tenant_b)
        related = {
            "region": region_b,
            "store": StoreFactory(tenant=tenant_b, region=region_b),
            "tags": [TagFactory(tenant=tenant_b)],
        }[field]
    with tenant_scope(tenant_a):
        with pytest.raises(ValidationError) as excinfo:
            services.customer_create(tenant=tenant_a, name="张三", phone="13800138000", **{field: related})
        assert list(error_dict(excinfo)) == [field]
        assert Customer.objects.count() == 0
    with tenant_scope(tenant_b):
        assert Customer.objects.count() == 0


def test_other_tenants_tag_mixed_with_own_is_refused(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        tag_b = TagFactory(tenant=tenant_b)
    with tenant_scope(tenant_a):
        tag_a = TagFactory(tenant=tenant_a)
        with pytest.raises(ValidationError) as excinfo:
            services.customer_create(tenant=tenant_a, name="张三", phone="13800138000", tags=[tag_a, tag_b])
        assert list(error_dict(excinfo)) == ["tags"]
        assert Customer.objects.count() == 0


def test_store_not_in_region_is_refused(scope_a):
    east = RegionFactory(tenant=scope_a, name="华东")
    north = RegionFactory(tenant=scope_a, name="华北")
    store = StoreFactory(tenant=scope_a, region=north)
    with pytest.raises(ValidationError) as excinfo:
        services.customer_create(tenant=scope_a, name="张三", phone="13800138000", region=east, store=store)
    assert list(error_dict(excinfo)) == ["store"]
    assert Customer.objects.count() == 0


def test_customer_update_region_not_matching_existing_store_is_refused(scope_a):
    east = RegionFactory(tenant=scope_a, name="华东")
    north = RegionFactory(tenant=scope_a, name="华北")
    customer = CustomerFactory(tenant=scope_a, region=east, store=StoreFactory(tenant=scope_a, region=east))
    with pytest.raises(ValidationError) as excinfo:
        services.customer_update(customer=customer, region=north)
    assert list(error_dict(excinfo)) == ["store"]
    customer.refresh_from_db()
    assert customer.region_id == east.pk


def test_over_long_name_is_refused(scope_a):
    with pytest.raises(ValidationError) as excinfo:
        services.customer_create(tenant=scope_a, name="张" * 61, phone="13800138000")
    assert list(error_dict(excinfo)) == ["name"]
    assert Customer.objects.count() == 0


def test_name_of_exactly_sixty_characters_is_accepted(scope_a):
    customer = services.customer_create(tenant=scope_a, name="张" * 60, phone="13800138000")
    assert len(customer.name) == 60


def test_unknown_tier_is_refused(scope_a):
    with pytest.raises(ValidationError) as excinfo:
        services.customer_create(tenant=scope_a, name="张三", phone="13800138000", tier="gold")
    assert list(error_dict(excinfo)) == ["tier"]
    assert Customer.objects.count() == 0


# --- opportunities --------------------------------------------------------------------------


def test_opportunity_create_quantises_amount(scope_a):
    customer = CustomerFactory(tenant=scope_a)
    opp = services.opportunity_create(tenant=scope_a, customer=customer, title="年度保养", amount="12800.5")
    opp.refresh_from_db()
    assert opp.amount == Decimal("12800.50")
    assert opp.stage == OpportunityStage.LEAD


def test_opportunity_won_without_signed_date_is_refused(scope_a):
    customer = CustomerFactory(tenant=scope_a)
    with pytest.raises(ValidationError) as excinfo:
        services.opportunity_create(tenant=scope_a, customer=customer, title="签约", stage=OpportunityStage.WON)
    assert list(error_dict(excinfo)) == ["signed_date"]
    assert Opportunity.objects.count() == 0


def test_opportunity_won_with_signed_date_is_saved(scope_a):
    customer = CustomerFactory(tenant=scope_a)
    opp = services.opportunity_create(
        tenant=scope_a, customer=customer, title="签约", stage=OpportunityStage.WON,
        signed_date=datetime.date(2024, 5, 1), amount=Decimal("100"),
    )
    assert Opportunity.objects.get().pk == opp.pk


def test_opportunity_update_to_won_without_signed_date_is_refused(scope_a):
    opp = OpportunityFactory(customer=CustomerFactory(tenant=scope_a))
    with pytest.raises(ValidationError) as excinfo:
        services.opportunity_update(opportunity=opp, stage=OpportunityStage.WON)
    assert list(error_dict(excinfo)) == ["signed_date"]
    opp.refresh_from_db()
    assert opp.stage == OpportunityStage.LEAD


@pytest.mark.parametrize("amount", [Decimal("-0.01"), "-100", -1])
def test_negative_amount_is_refused(scope_a, amount):
    customer = CustomerFactory(tenant=scope_a)
    with pytest.raises(ValidationError) as excinfo:
        services.opportunity_create(tenant=scope_a, customer=customer, title="负数", amount=amount)
    assert list(error_dict(excinfo)) == ["amount"]
    assert Opportunity.objects.count() == 0


def test_non_numeric_amount_is_refused(scope_a):
    customer = CustomerFactory(tenant=scope_a)
    with pytest.raises(ValidationError) as excinfo:
        services.opportunity_create(tenant=scope_a, customer=customer, title="坏数", amount="一万")
    assert list(error_dict(excinfo)) == ["amount"]
    assert Opportunity.objects.count() == 0


def test_opportunity_for_another_tenants_customer_is_refused(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        customer_b = CustomerFactory(tenant=tenant_b)
    with tenant_scope(tenant_a):
        with pytest.raises(ValidationError) as excinfo:
            services.opportunity_create(tenant=tenant_a, customer=customer_b, title="越界")
        assert list(error_dict(excinfo)) == ["customer"]
        assert Opportunity.objects.count() == 0


# --- regions --------------------------------------------------------------------------------


def test_region_create_with_parent(scope_a):
    east = services.region_create(tenant=scope_a, name="华东", code="east", settlement_class="B")
    shanghai = services.region_create(tenant=scope_a, name="上海", code="sh", parent=east)
    assert shanghai.parent_id == east.pk
    assert Region.objects.get(code="east").settlement_class == "B"


def test_region_create_duplicate_code_and_name_refused(scope_a):
    services.region_create(tenant=scope_a, name="华东", code="east")
    with pytest.raises(ValidationError) as excinfo:
        services.region_create(tenant=scope_a, name="华东", code="east")
    assert set(error_dict(excinfo)) == {"code", "name"}
    assert Region.objects.count() == 1


def test_region_update_making_a_cycle_is_refused(scope_a):
    top = services.region_create(tenant=scope_a, name="华东", code="east")
    middle = services.region_create(tenant=scope_a, name="江浙沪", code="jzh", parent=top)
    bottom = services.region_create(tenant=scope_a, name="上海", code="sh", parent=middle)

    with pytest.raises(ValidationError) as excinfo:
        services.region_update(region=top, parent=bottom)
    assert list(error_dict(excinfo)) == ["parent"]
    top.refresh_from_db()
    assert top.parent_id is None


def test_region_update_to_be_its_own_parent_is_refused(scope_a):
    region = services.region_create(tenant=scope_a, name="华东", code="east")
    with pytest.raises(ValidationError) as excinfo:
        services.region_update(region=region, parent=region)
    assert list(error_dict(excinfo)) == ["parent"]
    region.refresh_from_db()
    assert region.parent_id is None


def test_region_update_moving_under_a_sibling_is_fine(scope_a):
    top = services.region_create(tenant=scope_a, name="华东", code="east")
    a = services.region_create(tenant=scope_a, name="上海", code="sh", parent=top)
    b = services.region_create(tenant=scope_a, name="浦东", code="pd", parent=top)
    services.region_update(region=b, parent=a, name="浦东新区")
    b.refresh_from_db()
    assert (b.parent_id, b.name) == (a.pk, "浦东新区")


def test_region_parent_of_another_tenant_is_refused(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        parent_b = RegionFactory(tenant=tenant_b)
    with tenant_scope(tenant_a):
        with pytest.raises(ValidationError) as excinfo:
            services.region_create(tenant=tenant_a, name="华东", code="east", parent=parent_b)
        assert list(error_dict(excinfo)) == ["parent"]
        assert Region.objects.count() == 0


# --- stores ---------------------------------------------------------------------------------


def test_store_create_normalises_phone(scope_a):
    region = RegionFactory(tenant=scope_a)
    store = services.store_create(
        tenant=scope_a, region=region, name="徐汇店", code="xh", phone="021 6234 5678",
        latitude=Decimal("31.19"), longitude=Decimal("121.43"),
    )
    store.refresh_from_db()
    assert store.phone == "021-62345678"
    assert store.tenant_id == scope_a.pk
    assert store.latitude == Decimal("31.190000")


def test_store_create_duplicate_code_is_refused(scope_a):
    region = RegionFactory(tenant=scope_a)
    services.store_create(tenant=scope_a, region=region, name="徐汇店", code="xh")
    with pytest.raises(ValidationError) as excinfo:
        services.store_create(tenant=scope_a, region=region, name="徐汇二店", code="xh")
    assert list(error_dict(excinfo)) == ["code"]
    assert Store.objects.count() == 1


def test_store_code_may_repeat_across_tenants(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b), code="xh")
    with tenant_scope(tenant_a):
        store = services.store_create(tenant=tenant_a, region=RegionFactory(tenant=tenant_a), name="徐汇店", code="xh")
        assert Store.objects.get().pk == store.pk


def test_store_with_latitude_only_is_refused(scope_a):
    region = RegionFactory(tenant=scope_a)
    with pytest.raises(ValidationError) as excinfo:
        services.store_create(tenant=scope_a, region=region, name="徐汇店", code="xh", latitude=Decimal("31.1"))
    assert list(error_dict(excinfo)) == ["longitude"]
    assert Store.objects.count() == 0


def test_store_latitude_out_of_range_is_refused(scope_a):
    region = RegionFactory(tenant=scope_a)
    with pytest.raises(ValidationError) as excinfo:
        services.store_create(
            tenant=scope_a, region=region, name="徐汇店", code="xh", latitude=Decimal("91"), longitude=Decimal("121")
        )
    assert list(error_dict(excinfo)) == ["latitude"]
    assert Store.objects.count() == 0


def test_store_in_another_tenants_region_is_refused(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        region_b = RegionFactory(tenant=tenant_b)
    with tenant_scope(tenant_a):
        with pytest.raises(ValidationError) as excinfo:
            services.store_create(tenant=tenant_a, region=region_b, name="徐汇店", code="xh")
        assert list(error_dict(excinfo)) == ["region"]
        assert Store.objects.count() == 0


def test_store_update_refuses_unknown_fields(scope_a):
    store = StoreFactory(tenant=scope_a, region=RegionFactory(tenant=scope_a))
    with pytest.raises(TypeError, match="unknown fields"):
        services.store_update(store=store, tenant=None)


def test_store_update_latitude_only_keeps_existing_longitude(scope_a):
    store = StoreFactory(tenant=scope_a, region=RegionFactory(tenant=scope_a))
    services.store_update(store=store, latitude=Decimal("31.200000"))
    store.refresh_from_db()
    assert (store.latitude, store.longitude) == (Decimal("31.200000"), Decimal("121.436000"))


# --- staff and memberships ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "is_staff"),
    [
        (Role.ADMIN, True),
        (Role.MANAGER, True),
        (Role.REGIONAL_MANAGER, False),
        (Role.AGENT, False),
        (Role.ENGINEER, False),
        (Role.FINANCE, False),
    ],
)
def test_staff_create_makes_user_membership_and_profile(scope_a, role, is_staff):
    region = RegionFactory(tenant=scope_a)
    store = StoreFactory(tenant=scope_a, region=region)
    skill = services.skill_get_or_create(tenant=scope_a, name=" 空调安装 ")
    team = TeamFactory(tenant=scope_a, region=region)

    profile = services.staff_create(
        tenant=scope_a, username="wang", password="pw-Wang-12345", display_name="王师傅", role=role,
        phone="138 0013 8000", home_store=store, skills=[skill], teams=[team], max_open_tickets=5,
    )

    user = User.objects.get(username="wang")
    assert user.check_password("pw-Wang-12345")
    assert user.first_name == "王师傅"
    assert user.is_staff is is_staff
    membership = Membership.objects.get(user=user)
    assert (membership.tenant_id, membership.role, membership.is_active) == (scope_a.pk, role, True)
    profile = StaffProfile.objects.get(pk=profile.pk)
    assert profile.user_id == user.pk
    assert profile.display_name == "王师傅"
    assert profile.phone == "13800138000"
    assert profile.home_store_id == store.pk
    assert (profile.latitude, profile.longitude) == (store.latitude, store.longitude)
    assert profile.max_open_tickets == 5
    assert [s.name for s in profile.skills.all()] == ["空调安装"]
    assert list(profile.teams.all()) == [team]


def test_staff_create_duplicate_username_is_refused(scope_a):
    UserFactory(username="wang")
    with pytest.raises(ValidationError) as excinfo:
        services.staff_create(tenant=scope_a, username="wang", password="pw-x-12345", display_name="王", role="agent")
    assert list(error_dict(excinfo)) == ["username"]
    assert User.objects.filter(username="wang").count() == 1
    assert Membership.objects.count() == 0
    assert StaffProfile.objects.count() == 0


def test_staff_create_unknown_role_writes_nothing(scope_a):
    with pytest.raises(ValidationError) as excinfo:
        services.staff_create(tenant=scope_a, username="wang", password="pw-x-12345", display_name="王", role="boss")
    assert list(error_dict(excinfo)) == ["role"]
    assert not User.objects.filter(username="wang").exists()
    assert Membership.objects.count() == 0


def test_staff_create_home_store_of_another_tenant_is_refused(tenant_a, tenant_b):
    with tenant_scope(tenant_b):
        store_b = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b))
    with tenant_scope(tenant_a):
        with pytest.raises(ValidationError) as excinfo:
            services.staff_create(
                tenant=tenant_a, username="wang", password="pw-x-12345", display_name="王", role="engineer",
                home_store=store_b,
            )
        assert list(error_dict(excinfo)) == ["home_store"]
        assert StaffProfile.objects.count() == 0
    assert not User.objects.filter(username="wang").exists()


def test_staff_create_bad_phone_is_a_phone_field_error(scope_a):
    with pytest.raises(ValidationError) as excinfo:
        services.staff_create(
            tenant=scope_a, username="wang", password="pw-x-12345", display_name="王", role="agent", phone="123"
        )
    assert not User.objects.filter(username="wang").exists()
    assert list(error_dict(excinfo)) == ["phone"]


def test_membership_set_creates_and_changes_role(scope_a):
    user = UserFactory()
    membership = services.membership_set(tenant=scope_a, user=user, role=Role.AGENT)
    assert membership.role == Role.AGENT
    user.refresh_from_db()
    assert user.is_staff is False

    changed = services.membership_set(tenant=scope_a, user=user, role=Role.MANAGER)
    assert changed.pk == membership.pk
    assert Membership.objects.get(user=user).role == Role.MANAGER
    assert Membership.objects.filter(user=user).count() == 1
    user.refresh_from_db()
    assert user.is_staff is True


def test_membership_set_reactivates_an_inactive_membership(scope_a):
    user = UserFactory()
    membership = services.membership_set(tenant=scope_a, user=user, role=Role.AGENT)
    Membership.objects.filter(pk=membership.pk).update(is_active=False)
    services.membership_set(tenant=scope_a, user=user, role=Role.AGENT)
    assert Membership.objects.get(pk=membership.pk).is_active is True


def test_membership_set_unknown_role_is_refused(scope_a):
    user = UserFactory()
    with pytest.raises(ValidationError) as excinfo:
        services.membership_set(tenant=scope_a, user=user, role="boss")
    assert list(error_dict(excinfo)) == ["role"]
    assert Membership.objects.count() == 0


def test_membership_set_demotion_takes_the_admin_site_away(scope_a):
    user = UserFactory()
    services.membership_set(tenant=scope_a, user=user, role=Role.ADMIN)
    services.membership_set(tenant=scope_a, user=user, role=Role.REGIONAL_MANAGER)
    user.refresh_from_db()
    assert user.is_staff is False


def test_membership_set_per_tenant(tenant_a, tenant_b):
    user = UserFactory()
    with tenant_scope(tenant_a):
        services.membership_set(tenant=tenant_a, user=user, role=Role.ADMIN)
    with tenant_scope(tenant_b):
        services.membership_set(tenant=tenant_b, user=user, role=Role.ENGINEER)
        assert Membership.objects.get(user=user).role == Role.ENGINEER
    with tenant_scope(tenant_a):
        assert Membership.objects.get(user=user).role == Role.ADMIN
