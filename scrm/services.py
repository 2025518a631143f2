"""Writes of the core app: tenants, staff and their grants, regions, stores, customers and
opportunities. Keyword-only, one transaction each; related objects must share the tenant."""

from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, remove_perm

from .db import insert_new
from .events import event_fire, guards_check
from .models import (
    Customer,
    CustomerTier,
    Membership,
    Opportunity,
    OpportunityStage,
    Region,
    Role,
    Skill,
    StaffProfile,
    Store,
    Tag,
    Team,
    Tenant,
)
from .permissions import ADMIN_SITE_ROLES
from .phone import phone_normalize
from .tenancy import user_memberships

User = get_user_model()


def _same_tenant(tenant, **objects):
    """Refuse related objects of another tenant, as a field error on the field that named them."""
    errors = {}
    for field, obj in objects.items():
        if obj is None:
            continue
        items = obj if isinstance(obj, (list, tuple, set)) else [obj]
        if any(item.tenant_id != tenant.pk for item in items):
            errors[field] = _("Select a valid choice. That choice is not one of the available choices.")
    if errors:
        raise ValidationError(errors)


def _staff_of_tenant(field, user):
    """Refuse an owner/handler who has no seat in the tenant in scope."""
    if user is not None and not Membership.objects.filter(user=user, is_active=True).exists():
        raise ValidationError({field: _("Select a member of staff of this tenant.")})


def _clean(instance, exclude=()):
    instance.full_clean(exclude=["tenant", *exclude], validate_unique=False, validate_constraints=False)


# --- tenants and staff ------------------------------------------------------------------

@transaction.atomic
def tenant_create(*, name, slug, settings=None):
    tenant = Tenant(name=name, slug=slug, settings=settings or {})
    tenant.full_clean()
    tenant.save()
    return tenant


@transaction.atomic
def membership_set(*, tenant, user, role):
    """Give a user a role in a tenant (create or change the membership). Admins and managers get
    the Django admin, which still shows them only their tenant."""
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    membership = Membership.objects.filter(tenant=tenant, user=user).first()
    if membership is None:
        membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    elif membership.role != role or not membership.is_active:
        membership.role = role
        membership.is_active = True
        membership.save(update_fields=["role", "is_active"])
    _staff_flag_sync(user)
    return membership


def _staff_flag_sync(user):
    """is_staff (the Django admin) follows the roles: on while any membership is admin/manager."""
    wanted = user.is_superuser or any(m.role in ADMIN_SITE_ROLES for m in user_memberships(user))
    if user.is_staff != wanted:
        user.is_staff = wanted
        user.save(update_fields=["is_staff"])


@transaction.atomic
def staff_create(
    *, tenant, username, password, display_name, role, phone="", email="", home_store=None, skills=(), teams=(),
    wecom_userid="", max_open_tickets=20, on_duty=True,
):
    """A new staff user with a membership and a staff profile in one go. Without a password the
    account cannot sign in until its person sets one through a link (staff_password_link)."""
    _same_tenant(tenant, home_store=home_store, skills=list(skills), teams=list(teams))
    username = (username or "").strip()
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": _("A user with that username already exists.")})
    phone = _field_phone(phone) if phone else ""
    _staff_phone_unique(tenant, phone)
    user = User(username=username, email=email, first_name=display_name)
    if password:
        _password_check(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    membership_set(tenant=tenant, user=user, role=role)
    profile = StaffProfile(
        tenant=tenant, user=user, display_name=display_name, phone=phone,
        home_store=home_store, wecom_userid=wecom_userid, max_open_tickets=max_open_tickets, on_duty=on_duty,
    )
    if home_store is not None and home_store.latitude is not None:
        profile.latitude, profile.longitude = home_store.latitude, home_store.longitude
    _clean(profile)
    profile.save()
    profile.skills.set(skills)
    profile.teams.set(teams)
    return profile


STAFF_FIELDS = ("display_name", "phone", "email", "role", "home_store", "skills", "teams", "wecom_userid",
                "max_open_tickets", "on_duty")


@transaction.atomic
def staff_update(*, profile, actor, **fields):
    """Change a person's profile, contact details and role in the tenant."""
    unknown = set(fields) - set(STAFF_FIELDS)
    if unknown:
        raise TypeError(f"staff_update got unknown fields {sorted(unknown)}")
    tenant = profile.tenant
    _same_tenant(tenant, home_store=fields.get("home_store"), skills=list(fields.get("skills", ())),
                 teams=list(fields.get("teams", ())))
    if "phone" in fields:
        fields["phone"] = _field_phone(fields["phone"]) if fields["phone"] else ""
        _staff_phone_unique(tenant, fields["phone"], exclude=profile)
    user = profile.user
    role = fields.pop("role", None)
    if role is not None:
        membership = Membership.objects.filter(user=user).first()
        if membership is not None and membership.role == Role.ADMIN and role != Role.ADMIN:
            _admin_remains(tenant, leaving=user, field="role")
        membership_set(tenant=tenant, user=user, role=role)
    if "email" in fields:
        user.email = fields.pop("email")
    if "display_name" in fields:
        user.first_name = fields["display_name"]
    user.full_clean(exclude=["password"])
    user.save(update_fields=["email", "first_name"])
    skills, teams = fields.pop("skills", None), fields.pop("teams", None)
    if "home_store" in fields and fields["home_store"] is not None and fields["home_store"].latitude is not None:
        fields["latitude"], fields["longitude"] = fields["home_store"].latitude, fields["home_store"].longitude
    for key, value in fields.items():
        setattr(profile, key, value)
    _clean(profile)
    profile.save()
    if skills is not None:
        profile.skills.set(skills)
    if teams is not None:
        profile.teams.set(teams)
    return profile


@transaction.atomic
def staff_active_set(*, profile, actor, active):
    """Deactivate (the person can no longer sign in to this tenant, nor be given tickets) or
    reactivate a seat. Nobody deactivates themselves or the tenant's last admin."""
    membership = Membership.objects.select_for_update().filter(user=profile.user).first()
    if membership is None:
        raise ValidationError(_("%(name)s has no role in this tenant yet: edit them to give them one.")
                              % {"name": profile.display_name})
    if membership.is_active == active:
        return membership
    if not active:
        if profile.user_id == actor.pk:
            raise ValidationError(_("You cannot deactivate your own account."))
        if membership.role == Role.ADMIN:
            _admin_remains(profile.tenant, leaving=profile.user, field=None)
    membership.is_active = active
    membership.save(update_fields=["is_active"])
    if not active and profile.on_duty:
        profile.on_duty = False
        profile.save(update_fields=["on_duty"])
    _staff_flag_sync(profile.user)
    return membership


@transaction.atomic
def staff_password_set(*, profile, password):
    """A tenant admin sets a new password for someone who lost theirs (tell it to them in person)."""
    user = profile.user
    _password_check(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def _password_check(password, user):
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc


def _staff_phone_unique(tenant, phone, exclude=None):
    if not phone:
        return
    others = StaffProfile.objects.filter(tenant=tenant, phone=phone)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        raise ValidationError({"phone": _("Another member of staff already has this phone number.")})


def _admin_remains(tenant, *, leaving, field):
    others = Membership.objects.filter(tenant=tenant, role=Role.ADMIN, is_active=True).exclude(user=leaving)
    if not others.exists():
        message = _("The tenant needs at least one active admin.")
        raise ValidationError({field: message} if field else message)


@transaction.atomic
def region_grant(*, user, region):
    """Let a user manage a region (and the regions below it): its stores, customers, tickets."""
    assign_perm("scrm.manage_region", user, region)


@transaction.atomic
def region_revoke(*, user, region):
    remove_perm("scrm.manage_region", user, region)


@transaction.atomic
def store_grant(*, user, store):
    assign_perm("scrm.manage_store", user, store)


@transaction.atomic
def store_revoke(*, user, store):
    remove_perm("scrm.manage_store", user, store)


# --- organisation -----------------------------------------------------------------------

@transaction.atomic
def region_create(*, tenant, name, code, parent=None, settlement_class="A"):
    _same_tenant(tenant, parent=parent)
    region = Region(tenant=tenant, name=name, code=code, parent=parent, settlement_class=settlement_class)
    _clean(region)
    _region_unique(region)
    region.save()
    return region


@transaction.atomic
def region_update(*, region, **fields):
    parent = fields.get("parent", region.parent)
    _same_tenant(region.tenant, parent=parent)
    node = parent
    while node is not None:
        if node.pk == region.pk:
            raise ValidationError({"parent": _("A region cannot sit inside itself or its own sub-region.")})
        node = node.parent
    for key, value in fields.items():
        setattr(region, key, value)
    _clean(region)
    _region_unique(region)
    region.save()
    return region


def _region_unique(region):
    others = Region.objects.exclude(pk=region.pk)
    errors = {}
    if others.filter(code=region.code).exists():
        errors["code"] = _("A region with this code already exists.")
    if others.filter(name=region.name).exists():
        errors["name"] = _("A region with this name already exists.")
    if errors:
        raise ValidationError(errors)


STORE_FIELDS = ("region", "name", "code", "city", "address", "phone", "latitude", "longitude", "is_active")


@transaction.atomic
def store_create(*, tenant, region, name, code, city="", address="", phone="", latitude=None, longitude=None,
                 is_active=True):
    store = Store(tenant=tenant)
    return _store_save(store, dict(region=region, name=name, code=code, city=city, address=address, phone=phone,
                                   latitude=latitude, longitude=longitude, is_active=is_active))


@transaction.atomic
def store_update(*, store, **fields):
    unknown = set(fields) - set(STORE_FIELDS)
    if unknown:
        raise TypeError(f"store_update got unknown fields {sorted(unknown)}")
    return _store_save(store, fields)


def _store_save(store, fields):
    _same_tenant(store.tenant, region=fields.get("region"))
    if fields.get("phone"):
        fields["phone"] = _field_phone(fields["phone"])
    latitude = fields.get("latitude", store.latitude)
    longitude = fields.get("longitude", store.longitude)
    if (latitude is None) != (longitude is None):
        raise ValidationError({"longitude": _("Give both latitude and longitude, or neither.")})
    for key, value in fields.items():
        setattr(store, key, value)
    _clean(store)
    if Store.objects.exclude(pk=store.pk).filter(code=store.code).exists():
        raise ValidationError({"code": _("A store with this code already exists.")})
    store.save()
    return store


@transaction.atomic
def team_create(*, tenant, name, region=None, lead=None):
    _same_tenant(tenant, region=region)
    _staff_of_tenant("lead", lead)
    team = Team(tenant=tenant, name=name, region=region, lead=lead)
    _clean(team)
    team.save()
    return team


def _label_get_or_create(model, tenant, name):
    name = (name or "").strip()
    existing = model.objects.filter(name=name).first()
    if existing is not None:
        return existing
    label = model(tenant=tenant, name=name)
    _clean(label)
    label.save()
    return label


@transaction.atomic
def skill_get_or_create(*, tenant, name):
    return _label_get_or_create(Skill, tenant, name)


@transaction.atomic
def tag_get_or_create(*, tenant, name):
    return _label_get_or_create(Tag, tenant, name)


# --- customers and opportunities --------------------------------------------------------

CUSTOMER_FIELDS = (
    "name", "phone", "email", "wecom_external_userid", "wechat_openid", "tier", "source", "region", "store", "owner",
    "address", "note",
)


def _field_phone(raw):
    try:
        return phone_normalize(raw)
    except ValidationError as exc:
        raise ValidationError({"phone": exc.messages}) from exc


def _customer_duplicates(customer):
    others = Customer.objects.exclude(pk=customer.pk)
    errors = {}
    if customer.phone:
        other = others.filter(phone=customer.phone).only("name").first()
        if other is not None:
            errors["phone"] = _("Customer “%(name)s” already has the phone number %(phone)s.") % {
                "name": other.name, "phone": customer.phone,
            }
    if customer.wecom_external_userid and others.filter(wecom_external_userid=customer.wecom_external_userid).exists():
        errors["wecom_external_userid"] = _("Another customer already has this WeCom external user id.")
    if customer.wechat_openid and others.filter(wechat_openid=customer.wechat_openid).exists():
        errors["wechat_openid"] = _("Another customer already has this WeChat openid.")
    if errors:
        raise ValidationError(errors)


def _customer_save(customer, fields, tags):
    tenant = customer.tenant
    _same_tenant(tenant, region=fields.get("region"), store=fields.get("store"), tags=list(tags or []))
    _staff_of_tenant("owner", fields.get("owner"))
    if fields.get("phone"):
        fields["phone"] = _field_phone(fields["phone"])
    if fields.get("tier", CustomerTier.NORMAL) not in CustomerTier.values:
        raise ValidationError({"tier": _("Unknown customer tier.")})
    store = fields.get("store", customer.store if customer.pk else None)
    if store is not None:
        region = fields.get("region")
        if region is None:
            fields["region"] = store.region
        elif store.region_id != region.pk:
            raise ValidationError({"store": _("This store is not in the chosen region.")})
    for key, value in fields.items():
        setattr(customer, key, value)
    # Region, store and owner were checked above (same tenant, staff seat): full_clean's
    # existence reads of them would only repeat that.
    _clean(customer, exclude=["region", "store", "owner"])
    # Everything that can refuse has been checked, so nothing below raises inside the atomic
    # block: nested in a caller's transaction (intake), only the tags need a savepoint.
    with transaction.atomic(savepoint=tags is not None):
        refused = _customer_write(customer)
        if refused is None and tags is not None:
            customer.tags.set(tags)
    if refused is not None:
        _customer_duplicates(customer)
        raise refused
    return customer


def _customer_write(customer):
    """Insert or update the row; the IntegrityError when a unique field (phone, WeCom id,
    openid: unique per tenant in the database) belongs to another customer, else None. The
    constraint finds a duplicate, not a read before the write. A new customer is one statement
    that skips a refused row (no savepoint); an update keeps its savepoint, so the caller's
    transaction stays usable for the read that names the other customer."""
    if customer._state.adding:
        inserted = insert_new([customer])
        if inserted is not None:
            return None if inserted else IntegrityError("customer: a unique field is taken")
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        return exc
    return None


def customer_create(*, tenant, name, phone="", tags=None, **fields):
    """A new customer. Validates, then writes in one transaction (a savepoint when nested only
    if there are tags): a refusal raises ValidationError and leaves the caller's transaction
    usable, which intake's customer link relies on."""
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise TypeError(f"customer_create got unknown fields {sorted(unknown)}")
    customer = Customer(tenant=tenant)
    customer = _customer_save(customer, {"name": name, "phone": phone, **fields}, tags)
    event_fire("customer.created", tenant=tenant, subject=customer)
    return customer


def customer_update(*, customer, tags=None, **fields):
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise TypeError(f"customer_update got unknown fields {sorted(unknown)}")
    previous = customer.tier
    customer = _customer_save(customer, fields, tags)
    if customer.tier != previous:
        event_fire("customer.tier_changed", tenant=customer.tenant, subject=customer, previous=previous)
    return customer


OPPORTUNITY_FIELDS = ("customer", "title", "amount", "stage", "owner", "signed_date")


@transaction.atomic
def opportunity_create(*, tenant, customer, title, amount=Decimal("0"), stage=OpportunityStage.LEAD, owner=None,
                       signed_date=None):
    opportunity = Opportunity(tenant=tenant)
    return _opportunity_save(opportunity, dict(customer=customer, title=title, amount=amount, stage=stage,
                                               owner=owner, signed_date=signed_date))


@transaction.atomic
def opportunity_update(*, opportunity, **fields):
    unknown = set(fields) - set(OPPORTUNITY_FIELDS)
    if unknown:
        raise TypeError(f"opportunity_update got unknown fields {sorted(unknown)}")
    return _opportunity_save(opportunity, fields)


def _opportunity_save(opportunity, fields):
    _same_tenant(opportunity.tenant, customer=fields.get("customer"))
    _staff_of_tenant("owner", fields.get("owner"))
    if "amount" in fields:
        try:
            fields["amount"] = Decimal(str(fields["amount"])).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError) as exc:
            raise ValidationError({"amount": _("Enter a number.")}) from exc
    # What is stored, not the instance: a ModelForm has already copied the new values onto it.
    stored = None if opportunity._state.adding else (
        Opportunity.objects.filter(pk=opportunity.pk).values("stage", "amount").first())
    previous_stage = stored["stage"] if stored else None
    previous_amount = stored["amount"] if stored else None
    for key, value in fields.items():
        setattr(opportunity, key, value)
    if opportunity.stage == OpportunityStage.WON and opportunity.signed_date is None:
        raise ValidationError({"signed_date": _("A won opportunity needs its signed date.")})
    _clean(opportunity)
    if opportunity.stage != previous_stage:
        # Upper apps may refuse the move (a deal still waiting for its approval cannot be won).
        guards_check("opportunity.stage_change", opportunity=opportunity, stage=opportunity.stage)
    opportunity.save()
    # Business events: subscribers record what they will do in this transaction.
    if opportunity.stage != previous_stage:
        event_fire("opportunity.stage_entered", tenant=opportunity.tenant, subject=opportunity,
                   previous=previous_stage)
    if opportunity.amount != previous_amount:
        event_fire("opportunity.amount_changed", tenant=opportunity.tenant, subject=opportunity,
                   previous=previous_amount)
    return opportunity
