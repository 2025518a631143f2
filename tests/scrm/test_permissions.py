"""A request reads its permissions in one query (scrm.permissions.permissions_preload, set up by
the middleware): the answers stay those of the backends reading on their own — the user's own
permissions and their groups' (ModelBackend), their role's in the tenant in scope
(TenantRoleBackend) — and a superuser keeps every permission."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from scrm.models import Membership, Role
from scrm.selectors import membership_remember
from scrm.services import membership_set
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

CHECKS = [
    "tickets.delete_ticket",  # given to the user directly
    "notifications.view_notification",  # through a group of their own
    "tickets.view_ticket", "scrm.add_customer",  # their role's
    "scrm.delete_customer", "workflow.change_workflow",  # nobody's
]
APPS = ["scrm", "tickets", "notifications", "workflow", "settlement"]


def permission(name):
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@pytest.fixture
def agent(agent_a):
    agent_a.user_permissions.add(permission("tickets.delete_ticket"))
    auditors = Group.objects.create(name="auditors")
    auditors.permissions.add(permission("notifications.view_notification"))
    agent_a.groups.add(auditors)
    return agent_a


def answers(user):
    return {
        "has_perm": {p: user.has_perm(p) for p in CHECKS},
        "modules": {app: user.has_module_perms(app) for app in APPS},
        "all": user.get_all_permissions(),
        "own": user.get_user_permissions(),
        "groups": user.get_group_permissions(),
    }


def test_preloaded_answers_are_the_backends_answers_in_one_query(tenant_a, agent, django_assert_num_queries):
    with tenant_scope(tenant_a):
        expected = answers(User.objects.get(pk=agent.pk))  # each backend reading on its own
        user = User.objects.get(pk=agent.pk)
        membership_remember(user=user, membership=Membership.objects.get(user=user))
        with django_assert_num_queries(1):
            assert answers(user) == expected
    assert expected["has_perm"] == {
        "tickets.delete_ticket": True, "notifications.view_notification": True, "tickets.view_ticket": True,
        "scrm.add_customer": True, "scrm.delete_customer": False, "workflow.change_workflow": False,
    }
    assert expected["own"] == {"tickets.delete_ticket"}
    assert expected["groups"] == {"notifications.view_notification"}
    assert expected["modules"]["settlement"] is False


def test_nothing_is_read_until_a_permission_is_asked(tenant_a, agent, django_assert_num_queries):
    with tenant_scope(tenant_a):
        user = User.objects.get(pk=agent.pk)
        membership = Membership.objects.get(user=user)
        with django_assert_num_queries(0):
            membership_remember(user=user, membership=membership)


def test_another_tenant_in_scope_reads_the_role_held_there(tenant_a, tenant_b):
    user = make_member(tenant_a, Role.ADMIN, "dual")
    with tenant_scope(tenant_b):
        membership_set(tenant=tenant_b, user=user, role=Role.ENGINEER)
    user = User.objects.get(pk=user.pk)
    with tenant_scope(tenant_a):
        membership_remember(user=user, membership=Membership.objects.get(user=user))
        assert user.has_perm("scrm.add_customer") is True
    with tenant_scope(tenant_b):
        assert user.has_perm("scrm.add_customer") is False
        assert user.has_perm("scrm.view_customer") is True


def test_superuser_keeps_every_permission(tenant_a):
    root = UserFactory(is_superuser=True, is_staff=True)
    with tenant_scope(tenant_a):
        membership = membership_set(tenant=tenant_a, user=root, role=Role.ENGINEER)
        root = User.objects.get(pk=root.pk)
        membership_remember(user=root, membership=membership)
        assert root.has_perm("scrm.delete_customer") is True
        assert root.has_module_perms("settlement") is True
        assert root.get_all_permissions() == {
            f"{app}.{code}" for app, code in Permission.objects.values_list("content_type__app_label", "codename")
        }


def test_pages_honour_direct_and_group_permissions(tenant_a, engineer_a, client_for):
    """An engineer may not add customers by role; one given the permission directly, or through
    a group, may (the Django admin can grant both)."""
    client = client_for(engineer_a)
    url = reverse("customer-create")
    assert client.get(url).status_code == 403
    engineer_a.user_permissions.add(permission("scrm.add_customer"))
    assert client.get(url).status_code == 200
    engineer_a.user_permissions.clear()
    assert client.get(url).status_code == 403
    group = Group.objects.create(name="intake")
    group.permissions.add(permission("scrm.add_customer"))
    engineer_a.groups.add(group)
    assert client.get(url).status_code == 200
