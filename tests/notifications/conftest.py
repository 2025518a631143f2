"""Fixtures of the outbox tests: loopback stubs, a tenant with its channels configured, a
published ticket template, and an engineer who can be reached on every staff channel."""

import pytest

from notifications.channels.wecom import token_storage
from scrm.models import StaffProfile
from scrm.tenancy import tenant_scope
from tests.factories import published_template
from tests.notifications.stubs import AliyunSmsStub, OfficialAccountStub, WeComStub

CORP_ID, WECOM_SECRET, AGENT_ID = "ww5f3c0a9b7e1d2c4a", "wecom-app-secret-3f9a0c1e7b5d", 1000002
APP_ID, WECHAT_SECRET = "wx8a1b2c3d4e5f6a7b", "wechat-app-secret-1c2d3e4f5a6b"
ALIYUN_ID, ALIYUN_SECRET = "LTAI5tAliyunTestKeyId", "aliyun-test-secret-9f8e7d6c5b4a"

CHANNEL_SETTINGS = {
    "wecom": {"corp_id": CORP_ID, "agent_id": AGENT_ID, "secret": WECOM_SECRET},
    "wechat": {"app_id": APP_ID, "secret": WECHAT_SECRET},
    "sms": {"provider": "aliyun", "access_key_id": ALIYUN_ID, "access_key_secret": ALIYUN_SECRET,
            "sign_name": "味道江南"},
}


@pytest.fixture(autouse=True)
def _fresh_wechat_tokens():
    # Tokens are shared (memory, or Redis with REDIS_URL, as in production); a stub started for one
    # test knows none of another's.
    token_storage().clear()
    yield
    token_storage().clear()


@pytest.fixture
def wecom_stub():
    with WeComStub(corp_id=CORP_ID, secret=WECOM_SECRET, agent_id=AGENT_ID, unknown_users={"left.company"}) as stub:
        yield stub


@pytest.fixture
def wechat_stub():
    with OfficialAccountStub(app_id=APP_ID, secret=WECHAT_SECRET, unfollowed={"o-unfollowed"}) as stub:
        yield stub


@pytest.fixture
def aliyun_stub():
    with AliyunSmsStub(access_key_id=ALIYUN_ID, access_key_secret=ALIYUN_SECRET) as stub:
        yield stub


@pytest.fixture
def channels_a(tenant_a):
    """Tenant A with WeCom, the official account and Aliyun SMS configured."""
    tenant_a.settings = {**(tenant_a.settings or {}), **CHANNEL_SETTINGS}
    tenant_a.save()
    return tenant_a


@pytest.fixture
def ticket_template_a(tenant_a):
    with tenant_scope(tenant_a):
        return published_template(tenant_a)


@pytest.fixture
def reachable_engineer(tenant_a, engineer_a):
    """engineer_a with a WeCom id, a mobile number and an email address."""
    with tenant_scope(tenant_a):
        StaffProfile.objects.filter(user=engineer_a).update(wecom_userid="zhang.gong", phone="13911112222")
    engineer_a.email = "zhang.gong@example.com"
    engineer_a.save()
    return engineer_a
