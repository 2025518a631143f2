"""Who handles a node: handler rules behind one interface. A rule is data ({"rule": "role",
"role": "engineer", "scope": "store"}); each kind is a function registered here, so smart
dispatch can later be added as one more kind without touching the engine."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from scrm.models import Membership, RegionUserObjectPermission, StaffProfile, StoreUserObjectPermission

RULES = {}


@dataclass
class HandlerContext:
    ticket: object
    previous: object = None  # the user who handled the previous human node


def handler_rule(name):
    def register(func):
        RULES[name] = func
        return func

    return register


def _members(role=None):
    qs = Membership.objects.filter(is_active=True)
    return qs.filter(role=role) if role else qs


def _least_loaded(users):
    """Candidates ordered by how many open tasks they hold (fewest first), then by id."""
    from .models import Task

    users = list(users)
    if len(users) <= 1:
        return users
    load = dict(Task.objects.filter(assignee__in=users, status="open").values_list("assignee").annotate(n=Count("id"))
                .order_by())
    return sorted(users, key=lambda u: (load.get(u.pk, 0), u.pk))


@handler_rule("user")
def _named_user(rule, ctx):
    user_id = rule.get("user_id")
    return list(get_user_model().objects.filter(pk=user_id, memberships__in=_members())) if user_id else []


@handler_rule("role")
def _role(rule, ctx):
    """Members with the role within the ticket's store (home store or store grant), its region
    (home store in the region or region grant), or the whole tenant."""
    ticket, scope = ctx.ticket, rule.get("scope", "store")
    users = get_user_model().objects.filter(memberships__in=_members(rule.get("role")), is_active=True)
    if scope == "store" and ticket.store_id:
        users = users.filter(
            Q(pk__in=StaffProfile.objects.filter(home_store_id=ticket.store_id).values("user_id"))
            | Q(pk__in=StoreUserObjectPermission.objects.filter(content_object_id=ticket.store_id).values("user_id"))
        )
    elif scope in ("store", "region") and ticket.region_id:
        users = users.filter(
            Q(pk__in=StaffProfile.objects.filter(home_store__region_id=ticket.region_id).values("user_id"))
            | Q(pk__in=RegionUserObjectPermission.objects.filter(content_object_id=ticket.region_id)
                .values("user_id"))
        )
    return _least_loaded(users.distinct())


@handler_rule("customer_owner")
def _customer_owner(rule, ctx):
    customer = ctx.ticket.customer
    return [customer.owner] if customer and customer.owner_id else []


@handler_rule("previous")
def _previous(rule, ctx):
    return [ctx.previous] if ctx.previous is not None else []


@handler_rule("assignee")
def _assignee(rule, ctx):
    return [ctx.ticket.assignee] if ctx.ticket.assignee_id else []


def handlers_resolve(rule, ctx, *, many=False):
    """The user(s) a rule picks: the best one, or every candidate (countersign)."""
    if not rule or rule.get("rule") not in RULES:
        return []
    users = [u for u in RULES[rule["rule"]](rule, ctx) if u is not None]
    return users if many else users[:1]
