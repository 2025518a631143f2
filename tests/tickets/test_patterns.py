"""ReDoS (issue 13): a field's validation pattern runs on RE2, in time linear in the input, so a
tenant's catastrophic pattern cannot hold a web worker; patterns RE2 cannot run (backreferences,
lookaround) are refused when the template is saved."""

import signal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from scrm.tenancy import tenant_scope
from tests.factories import published_template
from tickets.fields import data_clean, schema_validate
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def fld(regex, type_="text"):
    return {"key": "code", "type": type_, "label": {"zh-hans": "编号"}, "public": "edit", "required": True,
            "validation": {"regex": regex, "max_length": 200}}


@pytest.fixture
def watchdog():
    """Turns a hang into a failure: with a backtracking engine the request below would run for
    longer than the universe has existed. It bounds the test, it does not measure it."""
    def expire(*_):
        raise TimeoutError("the pattern is still running")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("pattern", [r"^(a+)+$", r"(a|a)*$", r"(x+x+)+y", r"^(\w+\s?)*$"])
def test_public_form_refuses_input_to_a_catastrophic_pattern_at_once(client, tenant_a, watchdog, pattern):
    with tenant_scope(tenant_a):
        template = published_template(tenant_a, fields=[fld(pattern)])
    evil = "a" * 60 + "!" if "a" in pattern else "x" * 60 if "x" in pattern else "word " * 30 + "!"
    response = client.post(f"/s/{tenant_a.slug}/{template.slug}/",
                           {"contact_name": "张三", "contact_phone": "13800001234", "code": evil})
    assert response.status_code == 400
    assert 'data-field-error="code"' in response.content.decode()
    with tenant_scope(tenant_a):
        assert Ticket.objects.count() == 0


@pytest.mark.parametrize(("pattern", "value", "ok"), [
    (r"^[A-Z]{2}-\d{4,8}$", "AB-12345", True),
    (r"^[A-Z]{2}-\d{4,8}$", "AB-12", False),
    (r"[\u4e00-\u9fa5]{2,4}", "张三丰", True),
    (r"[\u4e00-\u9fa5]{2,4}", "Zhang", False),
    (r"(?P<area>\d{3})-\d{4}", "021-1234", True),
])
def test_ordinary_patterns_keep_working(scope_a, pattern, value, ok):
    fields = schema_validate([fld(pattern)])
    if ok:
        assert data_clean(fields, {"code": value}, audience="staff")[0] == {"code": value}
    else:
        with pytest.raises(ValidationError) as exc:
            data_clean(fields, {"code": value}, audience="staff")
        assert "code" in exc.value.message_dict


@pytest.mark.parametrize("pattern", [r"(a)\1", r"foo(?=bar)", r"(?<!x)y"])
def test_patterns_re2_cannot_run_are_refused_on_save(pattern):
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        schema_validate([fld(pattern)])
    assert "invalid regular expression" in " ".join(exc.value.messages)
