"""Settings from the environment: the production profile passes `check --deploy`, and refuses
to start without its required variables."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "SCRM_ENV": "production",
    "SECRET_KEY": "k" * 10 + "Zq8#vT2!mL9@pR4$wX7%nB3^cF6&hJ1*dG5(sK0)yU-aE",
    "ALLOWED_HOSTS": "scrm.example.com",
}


def test_production_profile_passes_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = dict(PRODUCTION)
    env.pop("SECRET_KEY")
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    env = dict(PRODUCTION)
    env.pop("ALLOWED_HOSTS")
    result = manage("check", **env)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is required" in result.stderr


def test_defaults_are_chinese_shanghai_time():
    from django.conf import settings

    assert settings.LANGUAGE_CODE == "zh-hans"
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.USE_TZ is True
    assert [code for code, _name in settings.LANGUAGES] == ["zh-hans", "en"]


def test_message_links_follow_where_make_run_serves():
    code = "from django.conf import settings; print(settings.SITE_URL)"
    assert manage("shell", "--no-imports", "-c", code, SCRM_PORT="8790").stdout.strip() == "http://127.0.0.1:8790"
    assert manage("shell", "--no-imports", "-c", code, SCRM_HOST="0.0.0.0", SCRM_PORT="9000",
                  SITE_URL="https://gd.example.com/").stdout.strip() == "https://gd.example.com"


def test_the_favicon_is_served_from_static(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("img/favicon.svg")
    assert 'rel="icon"' in client.get("/login/").content.decode()
