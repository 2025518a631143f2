"""Staff accounts inside the product (issue 14, item 7): a tenant admin adds a person, edits
their role, store, skills and duty, resets their password or sends a link, and deactivates them —
without the Django admin. Bad input is refused under its field and nothing is written."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from scrm.models import Membership, Role, Skill, StaffProfile
from scrm.tenancy import tenant_scope
from tests.factories import RegionFactory, StoreFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
STRONG = "Gx7!weidao-2026"


@pytest.fixture
def store(tenant_a):
    with tenant_scope(tenant_a):
        return StoreFactory(tenant=tenant_a, region=RegionFactory(tenant=tenant_a), name="徐汇店")


@pytest.fixture
def skill(tenant_a):
    with tenant_scope(tenant_a):
        return Skill.objects.create(tenant=tenant_a, name="空调维修")


def _new(store, skill=None, **over):
    data = {"display_name": "周建国", "username": "13812345678", "password": STRONG, "phone": "13812345678",
            "role": Role.ENGINEER, "home_store": store.pk, "max_open_tickets": "8", "on_duty": "on",
            "skills": [skill.pk] if skill else []}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def _count(tenant):
    with tenant_scope(tenant):
        return User.objects.count(), StaffProfile.objects.count(), Membership.objects.count()


def test_admin_adds_an_engineer_who_can_sign_in(tenant_a, admin_a, client_for, store, skill):
    response = client_for(admin_a).post(reverse("staff-create"), _new(store, skill))
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        profile = StaffProfile.objects.get(user__username="13812345678")
        assert Membership.objects.get(user=profile.user).role == Role.ENGINEER
        assert (profile.home_store, list(profile.skills.all()), profile.max_open_tickets) == (store, [skill], 8)
    client = Client()
    assert client.login(username="13812345678", password=STRONG)
    assert client.get(reverse("home")).status_code == 200


def test_without_a_password_the_admin_gets_a_link_that_sets_one(tenant_a, admin_a, client_for, store):
    response = client_for(admin_a).post(reverse("staff-create"), _new(store, password=""))
    assert response.status_code == 200 and 'data-testid="staff-link"' in response.content.decode()
    link = response.context["link"]
    user = User.objects.get(username="13812345678")
    assert not user.has_usable_password()
    person = Client()
    form_page = person.get(link, follow=True)
    assert form_page.status_code == 200
    done = person.post(form_page.redirect_chain[-1][0], {"new_password1": STRONG, "new_password2": STRONG})
    assert done.status_code == 302
    assert Client().login(username="13812345678", password=STRONG)


@pytest.mark.parametrize("over,field", [
    ({"display_name": ""}, "display_name"),
    ({"username": "周建国"}, "username"),
    ({"username": "x" * 200}, "username"),
    ({"display_name": "长" * 200}, "display_name"),
    ({"password": "123"}, "password"),
    ({"phone": "12345"}, "phone"),
    ({"role": "superuser"}, "role"),
    ({"max_open_tickets": "0"}, "max_open_tickets"),
    ({"max_open_tickets": "abc"}, "max_open_tickets"),
])
def test_bad_input_writes_nothing(tenant_a, admin_a, client_for, store, over, field):
    before = _count(tenant_a)
    response = client_for(admin_a).post(reverse("staff-create"), _new(store, **over))
    assert response.status_code == 400
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert _count(tenant_a) == before


def test_duplicate_sign_in_name_and_phone_are_refused(tenant_a, admin_a, client_for, store):
    client = client_for(admin_a)
    assert client.post(reverse("staff-create"), _new(store)).status_code == 302
    before = _count(tenant_a)
    again = client.post(reverse("staff-create"), _new(store, display_name="另一个人"))
    assert again.status_code == 400 and again.context["form"].errors.get("username")
    phone = client.post(reverse("staff-create"), _new(store, username="zhou2"))
    assert phone.status_code == 400 and "手机号" in " ".join(phone.context["form"].errors.get("phone", []))
    assert _count(tenant_a) == before


def test_another_tenants_store_is_refused(tenant_a, tenant_b, admin_a, client_for, store):
    with tenant_scope(tenant_b):
        foreign = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b))
    before = _count(tenant_a)
    response = client_for(admin_a).post(reverse("staff-create"), _new(store, home_store=foreign.pk))
    assert response.status_code == 400 and response.context["form"].errors.get("home_store")
    assert _count(tenant_a) == before


def test_a_manager_cannot_add_or_change_staff(tenant_a, manager_a, engineer_a, client_for, store):
    client = client_for(manager_a)
    assert client.get(reverse("staff-list")).status_code == 200
    before = _count(tenant_a)
    assert client.post(reverse("staff-create"), _new(store)).status_code == 403
    with tenant_scope(tenant_a):
        pk = StaffProfile.objects.get(user=engineer_a).pk
    assert client.post(reverse("staff-active", args=[pk]), {"active": "0"}).status_code == 403
    assert _count(tenant_a) == before


def test_edit_role_duty_and_store(tenant_a, admin_a, engineer_a, client_for, store):
    with tenant_scope(tenant_a):
        profile = StaffProfile.objects.get(user=engineer_a)
    client = client_for(admin_a)
    assert 'value="engineer_a"' in client.get(reverse("staff-update", args=[profile.pk])).content.decode()
    response = client.post(reverse("staff-update", args=[profile.pk]), {
        "display_name": "吴师傅", "role": Role.AGENT, "home_store": store.pk, "max_open_tickets": "5", "phone": ""})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        profile.refresh_from_db()
        assert (profile.display_name, profile.on_duty, profile.home_store) == ("吴师傅", False, store)
        assert Membership.objects.get(user=engineer_a).role == Role.AGENT


def test_the_last_admin_stays_admin_and_nobody_deactivates_themselves(tenant_a, admin_a, client_for):
    with tenant_scope(tenant_a):
        me = StaffProfile.objects.get(user=admin_a)
    client = client_for(admin_a)
    demote = client.post(reverse("staff-update", args=[me.pk]),
                         {"display_name": "admin_a", "role": Role.AGENT, "max_open_tickets": "5"})
    assert demote.status_code == 400 and demote.context["form"].errors.get("role")
    client.post(reverse("staff-active", args=[me.pk]), {"active": "0"})
    with tenant_scope(tenant_a):
        assert Membership.objects.get(user=admin_a).role == Role.ADMIN
        assert Membership.objects.get(user=admin_a).is_active


def test_deactivate_then_reactivate(tenant_a, admin_a, engineer_a, client_for):
    with tenant_scope(tenant_a):
        pk = StaffProfile.objects.get(user=engineer_a).pk
    client = client_for(admin_a)
    assert client.post(reverse("staff-active", args=[pk]), {"active": "0"}).status_code == 302
    with tenant_scope(tenant_a):
        assert not Membership.objects.get(user=engineer_a).is_active
        assert not StaffProfile.objects.get(pk=pk).on_duty
    assert client_for(engineer_a).get(reverse("ticket-list")).status_code == 404  # no seat any more
    def table(**params):
        body = client.get(reverse("staff-list"), params).content.decode()
        return body[body.index('data-testid="staff-table"'):]

    assert "engineer_a" not in table()
    assert "engineer_a" in table(state="inactive")
    client.post(reverse("staff-active", args=[pk]), {"active": "1"})
    with tenant_scope(tenant_a):
        assert Membership.objects.get(user=engineer_a).is_active


def test_password_reset_by_the_admin(tenant_a, admin_a, engineer_a, client_for):
    with tenant_scope(tenant_a):
        pk = StaffProfile.objects.get(user=engineer_a).pk
    client = client_for(admin_a)
    weak = client.post(reverse("staff-password", args=[pk]), {"password": "1234"})
    assert weak.status_code == 400
    assert client.post(reverse("staff-password", args=[pk]), {"password": STRONG}).status_code == 302
    assert Client().login(username="engineer_a", password=STRONG)
    link = client.post(reverse("staff-password", args=[pk]), {"password": ""})
    assert link.status_code == 200 and "/password-reset/" in link.context["link"]


def test_staff_list_queries_are_bounded(tenant_a, admin_a, client_for, django_assert_max_num_queries, store):
    with tenant_scope(tenant_a):
        for i in range(30):
            StaffProfile.objects.create(tenant=tenant_a, user=User.objects.create(username=f"s{i}"),
                                        display_name=f"员工{i}", home_store=store)
    client = client_for(admin_a)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("staff-list"), {"state": "all"}).status_code == 200


def test_other_tenant_staff_list_shows_none_of_ours(tenant_a, admin_b, engineer_a, client_for):
    assert "engineer_a" not in client_for(admin_b).get(reverse("staff-list")).content.decode()
