# ruff: noqa: F811  (the fixtures city and en are imported from the other dispatch tests)
"""Staff duty as people use it: an engineer goes on/off duty with one tap from 我的待办; a manager
sees per store who is on duty, their open tasks and skills (bounded queries, only their own
regions), and edits a person's skills and ticket limit — bad input changing nothing."""

import pytest

from scrm.models import Role, Skill, StaffProfile
from scrm.services import region_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import RegionFactory, StoreFactory
from tests.workflow.test_dispatch import city, intake, publish, rule  # noqa: F401 (fixture)
from tests.workflow.test_dispatch_views import en  # noqa: F401 (fixture)
from tests.workflow.test_views import url

pytestmark = pytest.mark.django_db


def profile_of(tenant, user):
    with tenant_scope(tenant):
        return StaffProfile.objects.get(user=user)


def test_an_engineer_goes_off_and_on_duty_with_one_tap_from_my_work(tenant_a, city, en):
    client = en(city["zhang"])
    page = client.get(url("work-queue")).content.decode()
    assert 'data-testid="duty"' in page and 'data-testid="duty-off"' in page
    response = client.post(url("workflow-duty"), {"on_duty": "0", "next": "/work/?tab=team"})
    assert response.status_code == 302 and response["Location"] == "/work/?tab=team"
    assert profile_of(tenant_a, city["zhang"]).on_duty is False
    page = client.get(url("work-queue")).content.decode()
    assert "You are off duty: no new tickets will be dispatched to you." in page and 'data-testid="duty-on"' in page
    client.post(url("workflow-duty"), {"on_duty": "1"})
    assert profile_of(tenant_a, city["zhang"]).on_duty is True


def test_off_duty_engineers_are_passed_over_by_dispatch(tenant_a, scope_a, wf_template, city, en):
    from workflow.models import Task

    publish(wf_template, rule(city, overflow=["store"]))
    for who in ("zhang", "li"):
        en(city[who]).post(url("workflow-duty"), {"on_duty": "0"})
    ticket = intake(scope_a, wf_template, city["xuhui"])
    assert Task.objects.get(ticket=ticket).assignee is None  # the pool


@pytest.mark.parametrize("data", [{}, {"on_duty": ""}, {"on_duty": "maybe"}, {"on_duty": "1" * 5000}])
def test_bad_duty_input_changes_nothing(tenant_a, city, en, data):
    client = en(city["zhang"])
    response = client.post(url("workflow-duty"), data, follow=True)
    assert "Say on or off duty." in response.content.decode()
    assert profile_of(tenant_a, city["zhang"]).on_duty is True


def test_duty_ignores_a_foreign_next_and_needs_a_profile(tenant_a, city, en):
    response = en(city["zhang"]).post(url("workflow-duty"), {"on_duty": "0", "next": "https://evil.example/"})
    assert response["Location"] == url("work-queue")
    with tenant_scope(tenant_a):
        StaffProfile.objects.filter(user=city["li"]).delete()
    response = en(city["li"]).post(url("workflow-duty"), {"on_duty": "0"}, follow=True)
    assert "You have no staff profile in this company" in response.content.decode()


def test_duty_is_post_only(tenant_a, city, en):
    assert en(city["zhang"]).get(url("workflow-duty")).status_code == 405


def test_board_shows_duty_load_and_skills_per_store_in_bounded_queries(tenant_a, scope_a, wf_template, city,
                                                                      manager_a, en, django_assert_max_num_queries):
    publish(wf_template, rule(city, overflow=["store"]))
    intake(scope_a, wf_template, city["xuhui"])
    profile = city["zhang"].staff_profiles.get()
    profile.on_duty = False
    profile.save()
    client = en(manager_a)
    with django_assert_max_num_queries(14) as first:
        page = client.get(url("workflow-staff-board")).content.decode()
    for name in ("zhang", "li", "wang", "zhao", "qian"):
        assert f'<span class="fw-semibold">{name}</span>' in page
    assert "徐汇店" in page and "苏州店" in page and "空调维修" in page
    assert page.count('data-testid="duty-off"') == 1
    assert "1 open / limit" in page
    for i in range(8):
        user = make_member(tenant_a, Role.ENGINEER, f"more{i}")
        extra = user.staff_profiles.get()
        extra.home_store = city["pudong"]
        extra.save()
        extra.skills.set([city["ac"], city["senior"]])
    with django_assert_max_num_queries(len(first.captured_queries)):
        page = client.get(url("workflow-staff-board")).content.decode()
    assert "more7" in page
    only = client.get(url("workflow-staff-board", store=city["suzhou"].pk)).content.decode()
    assert "zhao" in only and "zhang" not in only


def test_board_is_for_dispatchers_and_managers_and_a_regional_manager_sees_their_stores(tenant_a, city, en,
                                                                                        agent_a):
    assert en(city["zhang"]).get(url("workflow-staff-board")).status_code == 403
    agent_page = en(agent_a).get(url("workflow-staff-board")).content.decode()
    assert "zhang" in agent_page and "Skills and limit</a>" not in agent_page  # sees, cannot edit
    assert en(agent_a).get(url("workflow-staff-edit", city["zhang"].staff_profiles.get().pk)).status_code == 404
    with tenant_scope(tenant_a):
        rm = make_member(tenant_a, Role.REGIONAL_MANAGER, "rm_js")
        region_grant(user=rm, region=city["suzhou"].region)
    page = en(rm).get(url("workflow-staff-board")).content.decode()
    assert "zhao" in page and "zhang" not in page
    assert en(rm).get(url("workflow-staff-edit", city["zhang"].staff_profiles.get().pk)).status_code == 404
    assert en(rm).get(url("workflow-staff-board", store=city["xuhui"].pk)).status_code == 400


@pytest.mark.parametrize("store", ["abc", "9" * 30, "-1", "other"])
def test_board_bad_store_filter(tenant_a, tenant_b, city, manager_a, en, store):
    if store == "other":
        with tenant_scope(tenant_b):
            store = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b)).pk
    response = en(manager_a).get(url("workflow-staff-board", store=store))
    assert response.status_code == 400 and "Choose one of your stores." in response.content.decode()


def test_manager_edits_skills_and_limit(tenant_a, city, manager_a, en):
    profile = city["qian"].staff_profiles.get()
    client = en(manager_a)
    assert client.get(url("workflow-staff-edit", profile.pk)).status_code == 200
    response = client.post(url("workflow-staff-edit", profile.pk),
                           {"skills": [city["ac"].pk, city["senior"].pk], "max_open_tickets": "7"}, follow=True)
    assert "Saved qian&#x27;s skills and ticket limit." in response.content.decode()
    with tenant_scope(tenant_a):
        profile.refresh_from_db()
        assert profile.max_open_tickets == 7
        assert set(profile.skills.all()) == {city["ac"], city["senior"]}


@pytest.mark.parametrize(("data", "message"), [
    ({}, "Give the ticket limit."),
    ({"max_open_tickets": "abc"}, "Enter a whole number."),
    ({"max_open_tickets": "0"}, "At least one open ticket at a time."),
    ({"max_open_tickets": "-3"}, "At least one open ticket at a time."),
    ({"max_open_tickets": "501"}, "At most 500 open tickets."),
    ({"max_open_tickets": "9" * 40}, "At most 500 open tickets."),
    ({"max_open_tickets": "5", "skills": ["abc"]}, "“abc” is not a skill."),
    ({"max_open_tickets": "5", "skills": ["999999"]}, "“999999” is not a skill of this company."),
    ({"max_open_tickets": "5", "skills": ["other"]}, "is not a skill of this company."),
])
def test_bad_skill_and_limit_input_changes_nothing(tenant_a, tenant_b, city, manager_a, en, data,
                                                   message):
    if data.get("skills") == ["other"]:
        with tenant_scope(tenant_b):
            data = {**data, "skills": [Skill.objects.create(tenant=tenant_b, name="乙技能").pk]}
    profile = city["zhang"].staff_profiles.get()
    response = en(manager_a).post(url("workflow-staff-edit", profile.pk), data)
    assert response.status_code == 400 and message in response.content.decode()
    with tenant_scope(tenant_a):
        profile.refresh_from_db()
        assert profile.max_open_tickets == 20 and list(profile.skills.all()) == [city["ac"]]


def test_another_tenants_profile_is_404(tenant_a, tenant_b, city, admin_b, en):
    profile = city["zhang"].staff_profiles.get()
    client = en(admin_b)
    assert client.get(url("workflow-staff-edit", profile.pk)).status_code == 404
    assert client.post(url("workflow-staff-edit", profile.pk), {"max_open_tickets": "3"}).status_code == 404
    assert "zhang" not in client.get(url("workflow-staff-board")).content.decode()
    assert profile_of(tenant_a, city["zhang"]).max_open_tickets == 20
