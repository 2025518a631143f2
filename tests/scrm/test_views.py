"""Staff pages through the test client: customer and store forms, lists, filters, query counts, tenant switch."""

import re

import pytest
from django.urls import reverse

from scrm import services
from scrm.models import Customer, Membership, Role, Store
from scrm.tenancy import SESSION_TENANT_KEY, tenant_scope
from tests.conftest import make_member
from tests.factories import (
    CustomerFactory,
    OpportunityFactory,
    RegionFactory,
    StoreFactory,
    TagFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def field_errors(response):
    """Names of the form fields the page shows an error for."""
    return set(re.findall(r'data-field-error="([^"]+)"', response.content.decode()))


def customer_count(tenant):
    with tenant_scope(tenant):
        return Customer.objects.count()


def store_count(tenant):
    with tenant_scope(tenant):
        return Store.objects.count()


# --- customer create --------------------------------------------------------------------------


@pytest.fixture
def east(tenant_a):
    with tenant_scope(tenant_a):
        return RegionFactory(tenant=tenant_a, name="华东", code="east")


@pytest.fixture
def region_b(tenant_b):
    with tenant_scope(tenant_b):
        return RegionFactory(tenant=tenant_b, name="B区", code="b-east")


def customer_post(**overrides):
    data = {
        "name": "张三", "phone": "138 0013 8000", "email": "", "tier": "normal", "region": "", "store": "",
        "owner": "", "address": "", "wecom_external_userid": "", "wechat_openid": "", "note": "",
    }
    data.update(overrides)
    return data


def test_customer_create_succeeds_and_redirects(tenant_a, agent_a, east, client_for):
    with tenant_scope(tenant_a):
        store = StoreFactory(tenant=tenant_a, region=east, name="徐汇店")
        tag = TagFactory(tenant=tenant_a, name="老客户")
    client = client_for(agent_a)

    response = client.post(
        reverse("customer-create"),
        customer_post(store=store.pk, tags=[tag.pk], tier="vip", owner=agent_a.pk, note="爱喝茶"),
    )

    with tenant_scope(tenant_a):
        customer = Customer.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("customer-detail", args=[customer.pk])
        assert customer.tenant_id == tenant_a.pk
        assert customer.name == "张三"
        assert customer.phone == "13800138000"
        assert customer.tier == "vip"
        assert (customer.region_id, customer.store_id) == (east.pk, store.pk)
        assert customer.owner_id == agent_a.pk
        assert list(customer.tags.all()) == [tag]
    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert "张三" in detail.content.decode()


def test_customer_create_form_renders(agent_a, client_for):
    response = client_for(agent_a).get(reverse("customer-create"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="name"' in body
    assert 'name="phone"' in body
    assert field_errors(response) == set()


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("bad_phone", "phone"),
        ("duplicate_phone", "phone"),
        ("other_tenant_region", "region"),
        ("long_name", "name"),
        ("missing_name", "name"),
        ("no_contact", "phone"),
        ("other_tenant_tag", "tags"),
        ("bad_email", "email"),
    ],
)
def test_customer_create_bad_input(tenant_a, tenant_b, agent_a, region_b, client_for, case, field):
    with tenant_scope(tenant_a):
        CustomerFactory(tenant=tenant_a, name="老张", phone="13800138000")
    with tenant_scope(tenant_b):
        tag_b = TagFactory(tenant=tenant_b)
    data = {
        "bad_phone": customer_post(phone="12812345678"),
        "duplicate_phone": customer_post(phone="+86 138-0013-8000"),
        "other_tenant_region": customer_post(phone="13900001111", region=region_b.pk),
        "long_name": customer_post(phone="13900001111", name="张" * 61),
        "missing_name": customer_post(phone="13900001111", name=""),
        "no_contact": customer_post(phone=""),
        "other_tenant_tag": customer_post(phone="13900001111", tags=[tag_b.pk]),
        "bad_email": customer_post(phone="13900001111", email="not-an-email"),
    }[case]
    before_a, before_b = customer_count(tenant_a), customer_count(tenant_b)

    response = client_for(agent_a).post(reverse("customer-create"), data)

    assert response.status_code == 400
    assert field_errors(response) == {field}
    assert customer_count(tenant_a) == before_a
    assert customer_count(tenant_b) == before_b


def test_duplicate_phone_error_names_the_existing_customer(tenant_a, agent_a, client_for):
    with tenant_scope(tenant_a):
        CustomerFactory(tenant=tenant_a, name="老张", phone="13800138000")
    response = client_for(agent_a).post(reverse("customer-create"), customer_post(phone="13800138000"))
    assert response.status_code == 400
    error = re.search(r'data-field-error="phone">([^<]*)<', response.content.decode()).group(1)
    assert "老张" in error
    assert customer_count(tenant_a) == 1


def test_store_outside_the_region_is_a_store_error(tenant_a, agent_a, east, client_for):
    with tenant_scope(tenant_a):
        north = RegionFactory(tenant=tenant_a, name="华北", code="north")
        store = StoreFactory(tenant=tenant_a, region=north)
    response = client_for(agent_a).post(reverse("customer-create"), customer_post(region=east.pk, store=store.pk))
    assert response.status_code == 400
    assert field_errors(response) == {"store"}
    assert customer_count(tenant_a) == 0


def test_regional_manager_cannot_pick_a_region_outside_their_grant(tenant_a, regional_manager_a, east, client_for):
    with tenant_scope(tenant_a):
        north = RegionFactory(tenant=tenant_a, name="华北", code="north")
    services.region_grant(user=regional_manager_a, region=east)
    client = client_for(regional_manager_a)
    refused = client.post(reverse("customer-create"), customer_post(region=north.pk))
    assert refused.status_code == 400
    assert field_errors(refused) == {"region"}
    assert customer_count(tenant_a) == 0
    accepted = client.post(reverse("customer-create"), customer_post(region=east.pk))
    assert accepted.status_code == 302
    assert customer_count(tenant_a) == 1


def test_engineer_gets_403_on_customer_create(tenant_a, engineer_a, client_for):
    client = client_for(engineer_a)
    assert client.get(reverse("customer-create")).status_code == 403
    response = client.post(reverse("customer-create"), customer_post())
    assert response.status_code == 403
    assert customer_count(tenant_a) == 0


def test_engineer_can_still_list_customers(engineer_a, client_for):
    assert client_for(engineer_a).get(reverse("customer-list")).status_code == 200


def test_anonymous_customer_list_redirects_to_login(client):
    response = client.get(reverse("customer-list"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert "next=/customers/" in response["Location"]


def test_anonymous_post_to_customer_create_writes_nothing(client, tenant_a):
    response = client.post(reverse("customer-create"), customer_post())
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert customer_count(tenant_a) == 0


# --- customer edit ---------------------------------------------------------------------------


def test_customer_edit(tenant_a, agent_a, east, client_for):
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a, name="老张", phone="13800138000", region=east)
        tag = TagFactory(tenant=tenant_a, name="团购客户")
    client = client_for(agent_a)
    url = reverse("customer-update", args=[customer.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'value="老张"' in page.content.decode()

    response = client.post(
        url, customer_post(name="张大爷", phone="13800138000", region=east.pk, tier="svip", tags=[tag.pk])
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("customer-detail", args=[customer.pk])
    with tenant_scope(tenant_a):
        customer.refresh_from_db()
        assert (customer.name, customer.phone, customer.tier) == ("张大爷", "13800138000", "svip")
        assert list(customer.tags.all()) == [tag]
        assert Customer.objects.count() == 1


def test_customer_edit_to_a_taken_phone_is_refused(tenant_a, agent_a, client_for):
    with tenant_scope(tenant_a):
        CustomerFactory(tenant=tenant_a, name="老张", phone="13800138000")
        other = CustomerFactory(tenant=tenant_a, name="小李", phone="13900001111")
    response = client_for(agent_a).post(
        reverse("customer-update", args=[other.pk]), customer_post(name="小李", phone="13800138000")
    )
    assert response.status_code == 400
    assert field_errors(response) == {"phone"}
    with tenant_scope(tenant_a):
        other.refresh_from_db()
        assert other.phone == "13900001111"


def test_customer_of_another_tenant_is_404(tenant_b, agent_a, client_for):
    with tenant_scope(tenant_b):
        customer_b = CustomerFactory(tenant=tenant_b, name="乙客户")
    client = client_for(agent_a)
    assert client.get(reverse("customer-detail", args=[customer_b.pk])).status_code == 404
    assert client.get(reverse("customer-update", args=[customer_b.pk])).status_code == 404
    response = client.post(reverse("customer-update", args=[customer_b.pk]), customer_post(name="篡改"))
    assert response.status_code == 404
    with tenant_scope(tenant_b):
        customer_b.refresh_from_db()
        assert customer_b.name == "乙客户"


# --- store create ----------------------------------------------------------------------------


def store_post(in_region, **overrides):
    data = {
        "region": in_region.pk, "name": "徐汇店", "code": "xh", "city": "上海", "address": "", "phone": "021 6234 5678",
        "latitude": "31.19", "longitude": "121.43", "is_active": "on",
    }
    data.update(overrides)
    return data


def test_store_create_succeeds_and_redirects(tenant_a, manager_a, east, client_for):
    response = client_for(manager_a).post(reverse("store-create"), store_post(east))
    with tenant_scope(tenant_a):
        store = Store.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("store-detail", args=[store.pk])
        assert (store.tenant_id, store.region_id, store.code) == (tenant_a.pk, east.pk, "xh")
        assert store.phone == "021-62345678"
        assert store.is_active is True


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("bad_phone", "phone"),
        ("other_tenant_region", "region"),
        ("duplicate_code", "code"),
        ("latitude_out_of_range", "latitude"),
        ("longitude_out_of_range", "longitude"),
        ("latitude_without_longitude", "longitude"),
        ("long_name", "name"),
        ("missing_region", "region"),
    ],
)
def test_store_create_bad_input(tenant_a, tenant_b, manager_a, east, region_b, client_for, case, field):
    with tenant_scope(tenant_a):
        StoreFactory(tenant=tenant_a, region=east, code="taken")
    data = {
        "bad_phone": store_post(east, phone="021-123"),
        "other_tenant_region": store_post(region_b),
        "duplicate_code": store_post(east, code="taken"),
        "latitude_out_of_range": store_post(east, latitude="91"),
        "longitude_out_of_range": store_post(east, longitude="-181"),
        "latitude_without_longitude": store_post(east, longitude=""),
        "long_name": store_post(east, name="店" * 81),
        "missing_region": store_post(east, region=""),
    }[case]
    before_a, before_b = store_count(tenant_a), store_count(tenant_b)

    response = client_for(manager_a).post(reverse("store-create"), data)

    assert response.status_code == 400
    assert field_errors(response) == {field}
    assert store_count(tenant_a) == before_a
    assert store_count(tenant_b) == before_b


def test_agent_gets_403_on_store_create(tenant_a, agent_a, east, client_for):
    response = client_for(agent_a).post(reverse("store-create"), store_post(east))
    assert response.status_code == 403
    assert store_count(tenant_a) == 0


def test_store_edit(tenant_a, manager_a, east, client_for):
    with tenant_scope(tenant_a):
        store = StoreFactory(tenant=tenant_a, region=east, code="xh", name="徐汇店")
    response = client_for(manager_a).post(
        reverse("store-update", args=[store.pk]), store_post(east, name="徐汇旗舰店", phone="")
    )
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        store.refresh_from_db()
        assert (store.name, store.code, store.phone) == ("徐汇旗舰店", "xh", "")


# --- customer list: search and filters ----------------------------------------------------------


@pytest.fixture
def listed(tenant_a, tenant_b, east):
    with tenant_scope(tenant_a):
        north = RegionFactory(tenant=tenant_a, name="华北", code="north")
        CustomerFactory(tenant=tenant_a, name="张三丰", phone="13800000001", region=east, tier="vip")
        CustomerFactory(tenant=tenant_a, name="张无忌", phone="13900000002", region=north, tier="normal")
        CustomerFactory(tenant=tenant_a, name="李四", phone="13700000003", region=north, tier="svip")
    with tenant_scope(tenant_b):
        CustomerFactory(tenant=tenant_b, name="张乙方", phone="13800000009")
    return {"east": east, "north": north}


LIST_NAMES = ["张三丰", "张无忌", "李四", "张乙方"]


def shown(response):
    body = response.content.decode()
    return sorted(name for name in LIST_NAMES if name in body)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["张三丰", "张无忌", "李四"]),
        ({"q": "张"}, ["张三丰", "张无忌"]),
        ({"q": " 无忌 "}, ["张无忌"]),
        ({"q": "139000"}, ["张无忌"]),
        ({"q": "乙方"}, []),
        ({"tier": "vip"}, ["张三丰"]),
        ({"tier": "svip"}, ["李四"]),
        ({"tier": "bogus"}, ["张三丰", "张无忌", "李四"]),
        ({"q": "张", "tier": "normal"}, ["张无忌"]),
    ],
)
def test_customer_list_search_and_tier(listed, agent_a, client_for, params, expected):
    response = client_for(agent_a).get(reverse("customer-list"), params)
    assert response.status_code == 200
    assert shown(response) == sorted(expected)


def test_customer_list_region_filter(listed, agent_a, client_for):
    client = client_for(agent_a)
    assert shown(client.get(reverse("customer-list"), {"region": listed["north"].pk})) == sorted(["张无忌", "李四"])
    assert shown(client.get(reverse("customer-list"), {"region": listed["east"].pk})) == ["张三丰"]
    assert shown(client.get(reverse("customer-list"), {"region": listed["north"].pk, "q": "李"})) == ["李四"]
    assert shown(client.get(reverse("customer-list"), {"region": "x"})) == sorted(["张三丰", "张无忌", "李四"])


def test_customer_list_htmx_returns_the_partial(listed, agent_a, client_for):
    client = client_for(agent_a)
    full = client.get(reverse("customer-list"), {"q": "张"})
    partial = client.get(reverse("customer-list"), {"q": "张"}, headers={"HX-Request": "true"})
    assert "<html" in full.content.decode()
    body = partial.content.decode()
    assert partial.status_code == 200
    assert "<html" not in body
    assert 'data-testid="customer-table"' in body
    assert shown(partial) == sorted(["张三丰", "张无忌"])


# --- query discipline -------------------------------------------------------------------------


def add_customers(tenant, region, store, tags, owner, count, start):
    with tenant_scope(tenant):
        for n in range(start, start + count):
            customer = CustomerFactory(tenant=tenant, name=f"客户{n:03d}", region=region, store=store, owner=owner)
            customer.tags.set(tags)
            OpportunityFactory(customer=customer, owner=owner, title=f"商机{n:03d}")
            OpportunityFactory(customer=customer, owner=owner, title=f"商机{n:03d}b")


def add_stores(tenant, region, count, start):
    with tenant_scope(tenant):
        for n in range(start, start + count):
            StoreFactory(tenant=tenant, region=region, code=f"q-{n:03d}")


@pytest.mark.parametrize("url_name", ["customer-list", "store-list", "opportunity-list"])
def test_list_pages_use_a_constant_number_of_queries(
    tenant_a, admin_a, agent_a, east, client_for, django_assert_max_num_queries, url_name
):
    with tenant_scope(tenant_a):
        store = StoreFactory(tenant=tenant_a, region=east, code="home")
        tags = [TagFactory(tenant=tenant_a, name="老客户"), TagFactory(tenant=tenant_a, name="团购客户")]
    add_customers(tenant_a, east, store, tags, admin_a, 3, 0)
    add_stores(tenant_a, east, 2, 0)
    client = client_for(admin_a)
    client.get(reverse(url_name))  # warm-up: content types and other process-wide caches

    with django_assert_max_num_queries(100) as small:
        response = client.get(reverse(url_name))
    assert response.status_code == 200
    three_rows = len(small.captured_queries)

    add_customers(tenant_a, east, store, tags, agent_a, 22, 3)
    add_stores(tenant_a, east, 22, 2)

    with django_assert_max_num_queries(three_rows):
        response = client.get(reverse(url_name))
    assert response.status_code == 200
    body = response.content.decode()
    expected_marker = {"customer-list": "客户024", "store-list": "q-021", "opportunity-list": "商机024"}[url_name]
    assert expected_marker in body


def test_opportunity_list_shows_an_ownerless_opportunity(tenant_a, agent_a, client_for):
    with tenant_scope(tenant_a):
        OpportunityFactory(customer=CustomerFactory(tenant=tenant_a), title="无人跟进", owner=None)
    response = client_for(agent_a).get(reverse("opportunity-list"))
    assert response.status_code == 200
    assert "无人跟进" in response.content.decode()


def test_opportunity_list_shows_the_owner(tenant_a, agent_a, client_for):
    with tenant_scope(tenant_a):
        OpportunityFactory(customer=CustomerFactory(tenant=tenant_a), title="有人跟进", owner=agent_a)
    body = client_for(agent_a).get(reverse("opportunity-list")).content.decode()
    assert "有人跟进" in body
    assert "agent_a" in body


def test_customer_created_without_owner_has_a_working_detail_page(tenant_a, agent_a, client_for):
    client = client_for(agent_a)
    response = client.post(reverse("customer-create"), customer_post())
    assert response.status_code == 302
    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert "张三" in detail.content.decode()


# --- tenant switch ------------------------------------------------------------------------------


def test_switch_to_a_tenant_without_membership_is_404(tenant_a, tenant_b, agent_a, client_for):
    client = client_for(agent_a)
    response = client.post(reverse("tenant-switch"), {"tenant": tenant_b.pk})
    assert response.status_code == 404
    assert SESSION_TENANT_KEY not in client.session


@pytest.mark.parametrize("value", ["", "abc", "-1", "999999"])
def test_switch_with_garbage_is_404(tenant_a, agent_a, client_for, value):
    client = client_for(agent_a)
    assert client.post(reverse("tenant-switch"), {"tenant": value}).status_code == 404
    assert SESSION_TENANT_KEY not in client.session


def test_member_of_both_tenants_switches_and_sees_b_only(tenant_a, tenant_b, client_for):
    user = make_member(tenant_a, Role.AGENT, "dual")
    with tenant_scope(tenant_b):
        services.membership_set(tenant=tenant_b, user=user, role=Role.AGENT)
        CustomerFactory(tenant=tenant_b, name="乙客户")
    with tenant_scope(tenant_a):
        CustomerFactory(tenant=tenant_a, name="甲客户")
    client = client_for(user)
    before = client.get(reverse("customer-list")).content.decode()
    assert "甲客户" in before
    assert "乙客户" not in before

    response = client.post(reverse("tenant-switch"), {"tenant": tenant_b.pk, "next": reverse("customer-list")})

    assert response.status_code == 302
    assert response["Location"] == reverse("customer-list")
    assert client.session[SESSION_TENANT_KEY] == tenant_b.pk
    after = client.get(reverse("customer-list")).content.decode()
    assert "乙客户" in after
    assert "甲客户" not in after

    # a forged id afterwards changes nothing
    tenant_c = TenantFactory()
    assert client.post(reverse("tenant-switch"), {"tenant": tenant_c.pk}).status_code == 404
    assert client.session[SESSION_TENANT_KEY] == tenant_b.pk


def test_switcher_lists_the_tenants_one_holds_an_active_seat_in(tenant_a, tenant_b, client_for):
    user = make_member(tenant_a, Role.AGENT, "dual")
    with tenant_scope(tenant_b):
        services.membership_set(tenant=tenant_b, user=user, role=Role.ENGINEER)
    left, closed = TenantFactory(name="已离开"), TenantFactory(name="已停用", is_active=False)
    for tenant in (left, closed):
        with tenant_scope(tenant):
            services.membership_set(tenant=tenant, user=user, role=Role.AGENT)
    with tenant_scope(left):
        Membership.objects.filter(user=user).update(is_active=False)
    page = client_for(user).get(reverse("home")).content.decode()
    offered = set(re.findall(r'name="tenant" value="(\d+)"', page))
    assert offered == {str(tenant_a.pk), str(tenant_b.pk)}
    assert client_for(make_member(tenant_a, Role.AGENT, "single")).get(reverse("home")).content.decode().count(
        'name="tenant"') == 0  # one tenant: nothing to switch to

    root = UserFactory(is_superuser=True, is_staff=True)
    page = client_for(root).get(reverse("home")).content.decode()
    assert set(re.findall(r'name="tenant" value="(\d+)"', page)) == {str(t.pk) for t in (tenant_a, tenant_b, left)}


def test_switch_refuses_an_offsite_next(tenant_a, agent_a, client_for):
    client = client_for(agent_a)
    response = client.post(reverse("tenant-switch"), {"tenant": tenant_a.pk, "next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_writes_after_switch_go_to_the_new_tenant(tenant_a, tenant_b, client_for):
    user = make_member(tenant_a, Role.AGENT, "dual")
    with tenant_scope(tenant_b):
        services.membership_set(tenant=tenant_b, user=user, role=Role.AGENT)
    client = client_for(user)
    client.post(reverse("tenant-switch"), {"tenant": tenant_b.pk})
    response = client.post(reverse("customer-create"), customer_post())
    assert response.status_code == 302
    assert customer_count(tenant_a) == 0
    assert customer_count(tenant_b) == 1


def test_user_without_any_seat_gets_404_on_customer_create(client_for, tenant_a):
    response = client_for(UserFactory()).post(reverse("customer-create"), customer_post())
    assert response.status_code == 404
    assert customer_count(tenant_a) == 0


# --- the sidebar (cached per person, language and page kind) -------------------------------------

def _sidebar_links(response):
    body = response.content.decode()
    start = body.index('<nav class="nav flex-column')
    nav = body[start:body.index("</nav>", start)]
    return re.findall(r'<a class="nav-link( active)?" href="([^"]+)"', nav)


def test_sidebar_links_hold_no_digits_so_pages_of_one_kind_share_a_cached_copy(manager_a, client_for):
    """sidebar_key folds the numbers of the path (/tickets/12/ and /tickets/13/ share a copy): true
    only while no link's own path has a digit."""
    links = _sidebar_links(client_for(manager_a).get("/customers/"))
    assert len(links) > 15
    assert [href for _active, href in links if re.search(r"\d", href)] == []


def test_sidebar_lights_the_page_kind_and_follows_the_person(tenant_a, manager_a, engineer_a, client_for):
    with tenant_scope(tenant_a):
        first, second = CustomerFactory(tenant=tenant_a), CustomerFactory(tenant=tenant_a)
    manager = client_for(manager_a)
    for customer in (first, second):  # the second page comes from the first one's cached copy
        links = _sidebar_links(manager.get(f"/customers/{customer.pk}/edit/"))
        assert [href for active, href in links if active] == ["/customers/"]
    assert [href for active, href in _sidebar_links(manager.get("/stores/")) if active] == ["/stores/"]
    # An engineer has fewer permissions: their own copy, without the configuration links.
    manager_links = {href for _a, href in _sidebar_links(manager.get("/customers/"))}
    engineer_links = {href for _a, href in _sidebar_links(client_for(engineer_a).get("/customers/"))}
    assert "/config/templates/" in manager_links and "/config/templates/" not in engineer_links
    assert engineer_links < manager_links
