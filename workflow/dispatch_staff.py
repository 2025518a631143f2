"""Reads for staff duty (值班): a person's own staff profile (the one-tap on/off duty of 我的待办),
and the manager's staff board — who works in each store, whether they are on duty, how many
open tasks they hold and their skills — limited to the manager's tenant and regions. The writes
are scrm.services.staff_update (the one writer of staff profiles)."""

from __future__ import annotations

from typing import Any

from django.db.models import F, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from scrm.models import Membership, Role, Skill, StaffProfile
from scrm.selectors import membership_current, visible_stores

from .lifecycle import ASSIGNABLE_ROLES
from .models import Workload

# Who sees the board: those who handle the exception pool (dispatchers too); who edits skills
# and limits: managers. A regional manager only for the stores they may see.
BOARD_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.REGIONAL_MANAGER, Role.AGENT})
BOARD_TENANT_WIDE = frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT})
EDIT_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.REGIONAL_MANAGER})


def _role_in(user: Any, roles: frozenset) -> bool:
    membership = membership_current(user=user)
    return user.is_superuser or (membership is not None and membership.role in roles)


def staff_board_allowed(*, user: Any) -> bool:
    return _role_in(user, BOARD_ROLES)


def staff_edit_allowed(*, user: Any) -> bool:
    return _role_in(user, EDIT_ROLES)


def own_profile(*, user: Any) -> StaffProfile | None:
    """The user's staff profile in the tenant in scope (None: they have none)."""
    if not user.is_authenticated:
        return None
    return StaffProfile.objects.filter(user=user).first()


def board_profiles(*, user: Any, store_id: int | None = None) -> QuerySet:
    """Active staff who may hold tickets, with their role, store, region and open-task count in one
    query and their skills in a second (prefetch), by region, store and name. A regional manager
    sees the staff of the stores they may see; tenant-wide roles everyone."""
    role = Subquery(Membership.objects.filter(user_id=OuterRef("user_id"), is_active=True, user__is_active=True,
                                              role__in=ASSIGNABLE_ROLES).values("role")[:1])
    load = Subquery(Workload.objects.filter(user_id=OuterRef("user_id")).values("open_tasks")[:1])
    qs = (StaffProfile.objects.annotate(member_role=role, load=Coalesce(load, Value(0), output_field=IntegerField()))
          .filter(member_role__isnull=False)
          .select_related("home_store", "home_store__region")
          .prefetch_related(Prefetch("skills", queryset=Skill.objects.order_by("name")))
          # People without a home store (office roles) last on every database.
          .order_by(F("home_store__region__code").asc(nulls_last=True), F("home_store__code").asc(nulls_last=True),
                    "display_name", "id"))
    membership = membership_current(user=user)
    if not staff_board_allowed(user=user):
        return qs.none()
    if not user.is_superuser and membership is not None and membership.role not in BOARD_TENANT_WIDE:
        qs = qs.filter(home_store__in=visible_stores(user=user))
    if store_id is not None:
        qs = qs.filter(home_store_id=store_id)
    return qs


def board_profile_get(*, user: Any, pk: int) -> StaffProfile | None:
    """A profile on the user's board that they may edit (None: not theirs to edit, or missing)."""
    if not staff_edit_allowed(user=user):
        return None
    return board_profiles(user=user).filter(pk=pk).first()


def board_stores(*, user: Any) -> QuerySet:
    """The stores a manager may filter the board by."""
    if not staff_board_allowed(user=user):
        return visible_stores(user=user).none()
    return visible_stores(user=user).order_by("region__code", "code")
