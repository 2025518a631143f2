"""Roles and what they may do. A role is a Django group holding model permissions; which
group applies is decided per request by the membership in the tenant in scope, so one user
can be an admin in one tenant and an agent in another. Object scopes (a regional manager's
regions and stores) are guardian grants, read by scrm.selectors.

A request reads all of its permissions in one query (`permissions_preload`): the user's own
and their groups' (PreloadedModelBackend, Django's ModelBackend) with those of their role
(TenantRoleBackend)."""

from django.contrib.auth.backends import BaseBackend, ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Value
from django_scopes import get_scope

from .models import Role

GROUP_PREFIX = "role:"

# Model permissions per role, as "app_label.codename". Apps add theirs when they land.
_CORE_ALL = [
    f"scrm.{action}_{model}"
    for model in ("region", "store", "team", "skill", "staffprofile", "customer", "opportunity", "tag", "membership")
    for action in ("view", "add", "change", "delete")
]
ROLE_PERMISSIONS = {
    Role.ADMIN: _CORE_ALL + [
        f"scrm.{action}_{model}"
        for model in ("regionuserobjectpermission", "storeuserobjectpermission")
        for action in ("view", "add", "change", "delete")
    ],
    Role.MANAGER: [
        p for p in _CORE_ALL if not p.startswith("scrm.delete_") and not p.endswith("_membership")
    ] + ["scrm.view_membership"],
    Role.REGIONAL_MANAGER: [
        "scrm.view_region", "scrm.view_store", "scrm.change_store", "scrm.view_team", "scrm.view_staffprofile",
        "scrm.view_customer", "scrm.add_customer", "scrm.change_customer",
        "scrm.view_opportunity", "scrm.add_opportunity", "scrm.change_opportunity",
        "scrm.view_tag", "scrm.add_tag",
    ],
    Role.AGENT: [
        "scrm.view_region", "scrm.view_store", "scrm.view_customer", "scrm.add_customer", "scrm.change_customer",
        "scrm.view_opportunity", "scrm.add_opportunity", "scrm.change_opportunity", "scrm.view_tag", "scrm.add_tag",
    ],
    Role.ENGINEER: ["scrm.view_region", "scrm.view_store", "scrm.view_customer", "scrm.view_tag"],
    Role.FINANCE: ["scrm.view_region", "scrm.view_store", "scrm.view_customer", "scrm.view_opportunity"],
}

_TICKET_WORK = ["tickets.view_ticket", "tickets.add_ticket", "tickets.change_ticket"]
_TICKET_CONFIG = [
    f"tickets.{action}_{model}"
    for model in ("category", "tickettemplate", "classificationrule")
    for action in ("view", "add", "change", "delete")
]
ROLE_PERMISSIONS[Role.ADMIN] += _TICKET_WORK + _TICKET_CONFIG + [
    f"tickets.{action}_apikey" for action in ("view", "add", "change", "delete")
] + ["tickets.view_timelineevent", "tickets.view_attachment", "notifications.view_notification",
     "notifications.change_notification"] + [
    f"notifications.{action}_{model}" for model in ("notificationtemplate", "preference", "customeroptout")
    for action in ("view", "add", "change", "delete")
]
ROLE_PERMISSIONS[Role.MANAGER] += _TICKET_WORK + _TICKET_CONFIG + [
    "notifications.view_notification", "notifications.view_notificationtemplate",
    "notifications.change_notificationtemplate", "notifications.add_notificationtemplate",
]
ROLE_PERMISSIONS[Role.REGIONAL_MANAGER] += _TICKET_WORK
ROLE_PERMISSIONS[Role.AGENT] += _TICKET_WORK
ROLE_PERMISSIONS[Role.ENGINEER] += ["tickets.view_ticket", "tickets.change_ticket"]
ROLE_PERMISSIONS[Role.FINANCE] += ["tickets.view_ticket"]

# Workflows: managers design and publish them; everyone who works tickets sees and acts on tasks.
_WORKFLOW_CONFIG = [f"workflow.{action}_workflow" for action in ("view", "add", "change", "delete")] + [
    "workflow.view_workflowversion", "workflow.view_run",
    *(f"workflow.{action}_{model}" for action in ("view", "add", "change", "delete")
      for model in ("businesscalendar", "calendarday", "slapolicy")),
]
_TASK_WORK = ["workflow.view_task", "workflow.change_task"]
ROLE_PERMISSIONS[Role.ADMIN] += _WORKFLOW_CONFIG + _TASK_WORK
ROLE_PERMISSIONS[Role.MANAGER] += _WORKFLOW_CONFIG + _TASK_WORK
for _role in (Role.REGIONAL_MANAGER, Role.AGENT, Role.ENGINEER, Role.FINANCE):
    ROLE_PERMISSIONS[_role] += _TASK_WORK

# Site visits (现场签到): managers see the day's check-ins and review the flagged ones.
for _role in (Role.ADMIN, Role.MANAGER, Role.REGIONAL_MANAGER):
    ROLE_PERMISSIONS[_role] += ["tickets.view_sitevisit", "tickets.change_sitevisit"]
# Spare parts: everyone who works tickets sees the catalogue and levels (and scans parts on their
# tickets); admins and managers keep the stock (receive, adjust, transfer) and the catalogue.
_PARTS_VIEW = ["spareparts.view_part", "spareparts.view_stock", "spareparts.view_movement",
               "spareparts.view_purchaserequest", "spareparts.view_transfer"]
_PARTS_KEEP = ["spareparts.add_part", "spareparts.change_part", "spareparts.change_stock",
               "spareparts.add_transfer", "spareparts.change_transfer", "spareparts.change_purchaserequest"]
_PARTS_SETUP = ["spareparts.add_warehouse", "spareparts.change_warehouse", "spareparts.view_billofmaterials",
                "spareparts.add_billofmaterials", "spareparts.change_billofmaterials",
                "spareparts.delete_billofmaterials"]
ROLE_PERMISSIONS[Role.ADMIN] += _PARTS_VIEW + _PARTS_KEEP + _PARTS_SETUP
ROLE_PERMISSIONS[Role.MANAGER] += _PARTS_VIEW + _PARTS_KEEP + _PARTS_SETUP
for _role in (Role.REGIONAL_MANAGER, Role.AGENT, Role.ENGINEER):
    ROLE_PERMISSIONS[_role] += _PARTS_VIEW
# The warehouse keeper (库管员) keeps the stock: receives, counts, transfers, edits the warehouses;
# purchasing (采购) keeps the catalogue (prices, suppliers) and the purchase requests. Both are
# told when a part runs low (spareparts.selectors.reorder_recipients).
ROLE_PERMISSIONS[Role.WAREHOUSE_KEEPER] = [
    "scrm.view_region", "scrm.view_store", *_PARTS_VIEW, "spareparts.change_stock", "spareparts.add_transfer",
    "spareparts.change_transfer", "spareparts.change_purchaserequest", "spareparts.change_warehouse"]
ROLE_PERMISSIONS[Role.PURCHASING] = [
    "scrm.view_region", "scrm.view_store", *_PARTS_VIEW, "spareparts.add_part", "spareparts.change_part",
    "spareparts.change_purchaserequest"]
# Automation (app `automation`): managers configure triggers and schedules and watch firings;
# those who talk to customers do the revisits.
_AUTOMATION_CONFIG = [f"automation.{action}_{model}" for action in ("view", "add", "change")
                      for model in ("trigger", "schedule")] + ["automation.view_firing", "automation.change_firing"]
_REVISIT_WORK = ["automation.view_revisit", "automation.change_revisit"]
ROLE_PERMISSIONS[Role.ADMIN] += _AUTOMATION_CONFIG + _REVISIT_WORK
ROLE_PERMISSIONS[Role.MANAGER] += _AUTOMATION_CONFIG + _REVISIT_WORK
ROLE_PERMISSIONS[Role.REGIONAL_MANAGER] += _REVISIT_WORK
ROLE_PERMISSIONS[Role.AGENT] += _REVISIT_WORK

# Roles whose visibility is the whole tenant; the others see what their grants cover.
TENANT_WIDE_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT, Role.FINANCE})
# Roles that get the Django admin (is_staff); what they see there is still their tenant only.
ADMIN_SITE_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


def role_group_name(role):
    return f"{GROUP_PREFIX}{role}"


@transaction.atomic
def role_groups_sync():
    """Create or update one group per role with exactly the permissions listed above."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role_group_name(role))
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)


# Where TenantRoleBackend keeps a user's role permissions, per tenant, for the request.
_ROLE_PERMS_ATTR = "_scrm_role_perms"


class TenantRoleBackend(BaseBackend):
    """Grants the permissions of the role the user holds in the tenant in scope."""

    def _role_permissions(self, user_obj):
        if not user_obj.is_active or user_obj.is_anonymous:
            return set()
        tenant_id = get_scope().get("tenant")
        if tenant_id is None or isinstance(tenant_id, (list, tuple)):
            return set()
        cache = user_obj.__dict__.setdefault(_ROLE_PERMS_ATTR, {})
        if tenant_id not in cache:
            from .selectors import membership_current

            membership = membership_current(user=user_obj)
            if membership is None:
                cache[tenant_id] = set()
            else:
                rows = Permission.objects.filter(group__name=role_group_name(membership.role)).values_list(
                    "content_type__app_label", "codename"
                )
                cache[tenant_id] = {f"{app}.{code}" for app, code in rows}
        return cache[tenant_id]

    def get_all_permissions(self, user_obj, obj=None):
        if obj is not None:
            return set()
        return self._role_permissions(user_obj)

    def has_perm(self, user_obj, perm, obj=None):
        return obj is None and perm in self._role_permissions(user_obj)

    def has_module_perms(self, user_obj, app_label):
        return any(p.startswith(app_label + ".") for p in self._role_permissions(user_obj))


# Where permissions_preload leaves the request's one permissions read on the user object.
_PRELOAD_ATTR = "_scrm_permissions_read"


class PreloadedModelBackend(ModelBackend):
    """Django's ModelBackend — sign-in, the user's own and their groups' permissions — answering
    from the request's single permissions read (`permissions_preload`) when the middleware set
    one up, and exactly as ModelBackend otherwise (superusers, object checks, no tenant)."""

    @staticmethod
    def _preloaded(user_obj, obj):
        return None if obj is not None else user_obj.__dict__.get(_PRELOAD_ATTR)

    def get_user_permissions(self, user_obj, obj=None):
        read = self._preloaded(user_obj, obj)
        return read.get("user") if read is not None else super().get_user_permissions(user_obj, obj)

    def get_group_permissions(self, user_obj, obj=None):
        read = self._preloaded(user_obj, obj)
        return read.get("group") if read is not None else super().get_group_permissions(user_obj, obj)

    def get_all_permissions(self, user_obj, obj=None):
        read = self._preloaded(user_obj, obj)
        return read.get("all") if read is not None else super().get_all_permissions(user_obj, obj)


def permissions_preload(*, user, membership):
    """Have the request read every permission of `user` in one query, when first asked.

    Without it a request pays three: the user's own permissions and their groups' (ModelBackend)
    and their role's in the tenant (TenantRoleBackend). This leaves one lazy read on the user
    that PreloadedModelBackend and TenantRoleBackend answer from: the middleware calls it
    (through scrm.selectors.membership_remember) once it knows the membership of the request's
    tenant. What each backend answers is unchanged. Superusers are left alone: has_perm grants
    them everything without reading, and ModelBackend lists every permission for them, which is
    not what the query below reads."""
    if membership is None or user.is_anonymous or not user.is_active or user.is_superuser:
        return
    read = _PermissionsRead(user=user, role=membership.role)
    user.__dict__[_PRELOAD_ATTR] = read
    user.__dict__.setdefault(_ROLE_PERMS_ATTR, {})[membership.tenant_id] = _PermissionsOnFirstUse(read, "role")


class _PermissionsRead:
    """The one query behind permissions_preload, run when a backend first asks."""

    def __init__(self, *, user, role):
        self.user, self.role, self.sets = user, role, None

    def get(self, name):
        if self.sets is None:

            def rows(permissions, source):
                return permissions.order_by().values_list(Value(source), "content_type__app_label", "codename")

            # The same rows ModelBackend reads: the user's own permissions, their groups'.
            query = rows(Permission.objects.filter(user=self.user), "user").union(
                rows(Permission.objects.filter(group__user=self.user), "group"),
                rows(Permission.objects.filter(group__name=role_group_name(self.role)), "role"),
                all=True,
            )
            sets = {"user": set(), "group": set(), "role": set()}
            for source, app_label, codename in query:
                sets[source].add(f"{app_label}.{codename}")
            sets["all"] = sets["user"] | sets["group"]
            self.sets = sets
        return self.sets[name]


class _PermissionsOnFirstUse:
    """A read-only set of "app_label.codename" strings, read from the database on first use.
    The backends only test membership in, and iterate over, their caches."""

    __slots__ = ("_name", "_read")

    def __init__(self, read, name):
        self._read, self._name = read, name

    def __contains__(self, perm):
        return perm in self._read.get(self._name)

    def __iter__(self):
        return iter(self._read.get(self._name))

    def __len__(self):
        return len(self._read.get(self._name))

    def __repr__(self):  # without reading: error pages and debuggers show the locals
        loaded = self._read.sets
        return repr(loaded[self._name]) if loaded is not None else f"<{self._name} permissions, not read yet>"
