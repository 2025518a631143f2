"""factory-boy factories for the core models. Create inside a tenant scope (the `scope_a`
fixture, or `with tenant_scope(...)`): tenant-owned managers refuse to run without one."""

import itertools
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from scrm.models import Customer, Membership, Opportunity, Region, Role, StaffProfile, Store, Tag, Team, Tenant

_mobile = itertools.count(13800000000)


def next_mobile():
    return str(next(_mobile))


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"测试租户{n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Sequence(lambda n: f"员工{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-Test-123")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.AGENT


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"区域{n}")
    code = factory.Sequence(lambda n: f"region-{n}")
    settlement_class = "A"


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    tenant = factory.SelfAttribute("region.tenant")
    region = factory.SubFactory(RegionFactory)
    name = factory.Sequence(lambda n: f"门店{n}")
    code = factory.Sequence(lambda n: f"store-{n}")
    city = "上海"
    address = "上海市徐汇区漕溪北路88号"
    latitude = Decimal("31.190000")
    longitude = Decimal("121.436000")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"服务{n}组")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"标签{n}")


class StaffProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffProfile

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    display_name = factory.SelfAttribute("user.first_name")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"客户{n}")
    phone = factory.LazyFunction(next_mobile)


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    tenant = factory.SelfAttribute("customer.tenant")
    customer = factory.SubFactory(CustomerFactory)
    title = factory.Sequence(lambda n: f"商机{n}")
    amount = Decimal("12800.00")


SIMPLE_FIELDS = [
    {"key": "order_no", "type": "text", "label": {"zh-hans": "订单号", "en": "Order number"}, "required": True,
     "public": "edit", "validation": {"max_length": 20}},
    {"key": "amount", "type": "money", "label": {"zh-hans": "金额", "en": "Amount"}, "required": False,
     "public": "hidden"},
    {"key": "detail", "type": "textarea", "label": {"zh-hans": "问题描述", "en": "Details"}, "required": False,
     "public": "edit"},
]


def published_template(tenant, *, name="餐饮投诉", slug="complaint", fields=None, prefix="TS", is_public=True,
                       category_code="complaint", category_name="投诉"):
    """A template with a published version (call inside the tenant's scope)."""
    from tickets.services import category_get_or_create, template_create, template_publish

    category = category_get_or_create(tenant=tenant, code=category_code, name=category_name)
    template = template_create(tenant=tenant, name=name, slug=slug, category=category, number_prefix=prefix,
                               is_public=is_public, fields=fields if fields is not None else SIMPLE_FIELDS)
    template_publish(template=template)
    template.refresh_from_db()
    return template


OFFICE_HOURS = {day: [["09:00", "12:00"], ["13:30", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


class BusinessCalendarFactory(factory.django.DjangoModelFactory):
    """A business calendar (workflow), Monday–Friday 09:00–12:00 and 13:30–18:00 in Shanghai."""

    class Meta:
        model = "workflow.BusinessCalendar"

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"工作日历{n}")
    time_zone = "Asia/Shanghai"
    weekly_hours = factory.LazyFunction(lambda: {k: [list(i) for i in v] for k, v in OFFICE_HOURS.items()})


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    """An SLA policy (workflow): respond in 2 working hours, resolve in 8, every ticket."""

    class Meta:
        model = "workflow.SlaPolicy"

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"SLA{n}")
    response_minutes = 120
    resolution_minutes = 480
