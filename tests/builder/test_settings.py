"""Settings from the environment, the data directory, the ASGI entry point, migrations."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.utils import get_random_secret_key

from builder import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), ("Yes", True),
                                        ("0", False), ("false", False), ("off", False),
                                        ("", True)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, value):
    monkeypatch.setenv("SHIPYARD_TEST_FLAG", raw)
    assert env.env_bool("SHIPYARD_TEST_FLAG", True) is value


@pytest.mark.parametrize("helper, raw", [(env.env_bool, "maybe"), (env.env_int, "12MB"),
                                         (env.env_int, "-5"), (env.env_float, "2h"),
                                         (env.env_float, "-0.5"), (env.env_float, "nan")])
def test_a_bad_value_fails_loudly_and_names_the_variable(monkeypatch, helper, raw):
    monkeypatch.setenv("SHIPYARD_TEST_VALUE", raw)
    args = (True,) if helper is env.env_bool else (3,)
    with pytest.raises(ImproperlyConfigured, match="SHIPYARD_TEST_VALUE"):
        helper("SHIPYARD_TEST_VALUE", *args)


def test_env_float_reads_a_number_and_its_default(monkeypatch):
    monkeypatch.setenv("SHIPYARD_TEST_HOURS", " 2.5 ")
    assert env.env_float("SHIPYARD_TEST_HOURS", 0.0) == 2.5
    monkeypatch.setenv("SHIPYARD_TEST_HOURS", "")
    assert env.env_float("SHIPYARD_TEST_HOURS", 7.0) == 7.0


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("SHIPYARD_TEST_HOSTS", "a.example, b.example,,")
    assert env.env_list("SHIPYARD_TEST_HOSTS", []) == ["a.example", "b.example"]


def _settings_in_a_fresh_process(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess:
    code = ("import json, django; from django.conf import settings; django.setup(); "
            "print(json.dumps({'home': str(settings.SHIPYARD_HOME), 'debug': settings.DEBUG, "
            "'db': settings.DATABASES['default']['ENGINE'], "
            "'name': str(settings.DATABASES['default']['NAME']), "
            "'hosts': settings.ALLOWED_HOSTS, 'key': settings.SECRET_KEY, "
            "'secure_cookies': [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE]}))")
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "SECRET_KEY", "DEBUG", "SHIPYARD_DEBUG",
                          "ALLOWED_HOSTS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"}}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60,
                          env={**clean, "PYTHONPATH": str(ROOT),
                               "DJANGO_SETTINGS_MODULE": "builder.settings", **environ})


def test_everything_lives_under_shipyard_home_with_sqlite_by_default(tmp_path):
    home = tmp_path / "data"
    result = _settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(home))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["home"] == str(home)
    assert seen["db"] == "django.db.backends.sqlite3"
    assert seen["name"] == str(home / "db.sqlite3")
    assert seen["debug"] is False
    assert seen["secure_cookies"] == [True, True]
    # The secret key is made once and kept.
    assert (home / "secret_key").read_text().strip() == seen["key"]
    again = json.loads(_settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(home)).stdout)
    assert again["key"] == seen["key"]


def test_shipyard_home_defaults_to_dot_shipyard_in_the_working_directory(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != "SHIPYARD_HOME"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; from django.conf import settings; "
         "django.setup(); print(settings.SHIPYARD_HOME)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "builder.settings"})
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / ".shipyard"
    assert (tmp_path / ".shipyard").is_dir()


def test_settings_follow_the_environment(tmp_path):
    result = _settings_in_a_fresh_process(
        tmp_path, SHIPYARD_HOME=str(tmp_path), DEBUG="false", SECRET_KEY="k" * 50,
        ALLOWED_HOSTS="shipyard.example,localhost",
        DATABASE_URL="postgres://someone@db.example:5432/shipyard")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["debug"] is False
    assert seen["key"] == "k" * 50
    assert seen["hosts"] == ["shipyard.example", "localhost"]
    assert seen["db"] == "django.db.backends.postgresql"
    assert seen["name"] == "shipyard"


@pytest.mark.parametrize("environ, debug", [
    ({"SHIPYARD_DEBUG": "1"}, True), ({"DEBUG": "true"}, True),
    ({"SHIPYARD_DEBUG": "0", "DEBUG": "true"}, False),
    ({"SHIPYARD_DEBUG": "1", "DEBUG": "false"}, True)])
def test_shipyard_debug_turns_debug_on_and_wins_over_its_older_name(tmp_path, environ, debug):
    result = _settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(tmp_path), **environ)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["debug"] is debug
    assert seen["secure_cookies"] == [not debug, not debug]


def test_cookies_follow_their_own_settings(tmp_path):
    result = _settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(tmp_path),
                                          SESSION_COOKIE_SECURE="false",
                                          CSRF_COOKIE_SECURE="no")
    assert json.loads(result.stdout)["secure_cookies"] == [False, False]


@pytest.mark.parametrize("name", ["SHIPYARD_DEBUG", "DEBUG"])
def test_a_bad_debug_value_stops_the_app_with_a_clear_message(tmp_path, name):
    result = _settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(tmp_path), **{name: "maybe"})
    assert result.returncode != 0
    assert name in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_a_bad_engine_limit_stops_the_app_at_start_up(tmp_path):
    result = _settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(tmp_path),
                                          SHIPYARD_MAX_NODES="lots")
    assert result.returncode != 0
    assert "SHIPYARD_MAX_NODES" in result.stderr


def test_a_bad_size_limit_stops_the_app_at_start_up(tmp_path):
    result = _settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(tmp_path),
                                          SHIPYARD_MAX_GRAPH_BYTES="2MB")
    assert result.returncode != 0
    assert "SHIPYARD_MAX_GRAPH_BYTES" in result.stderr


def test_the_channel_layer_is_redis_with_no_socket_timeout():
    layer = settings.CHANNEL_LAYERS["default"]
    assert layer["BACKEND"] == "builder.channel_layer.QueueingRedisChannelLayer"
    host = layer["CONFIG"]["hosts"][0]
    assert host["address"] == settings.REDIS_URL
    assert host["socket_timeout"] is None


def test_the_tests_use_a_temporary_home():
    assert Path(settings.SHIPYARD_HOME) != ROOT / ".shipyard"
    assert "shipyard-test-" in str(settings.SHIPYARD_HOME)


def test_the_asgi_app_routes_http_and_websockets(db):
    from channels.routing import ProtocolTypeRouter
    from channels.testing import HttpCommunicator

    from builder.asgi import application

    assert isinstance(application, ProtocolTypeRouter)
    assert set(application.application_mapping) == {"http", "websocket"}

    async def fetch() -> dict:
        communicator = HttpCommunicator(application, "GET", "/api/blocks",
                                        headers=[(b"host", b"localhost")])
        return await communicator.get_response(timeout=30)

    response = asyncio.run(fetch())
    assert response["status"] == 200
    assert json.loads(response["body"])["blocks"][0]["type"]


def test_every_model_change_has_a_migration(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_deployment_checks_find_nothing_with_production_settings(tmp_path):
    environ = {k: v for k, v in os.environ.items()
               if k not in {"DATABASE_URL", "DEBUG", "SHIPYARD_DEBUG", "SESSION_COOKIE_SECURE",
                            "CSRF_COOKIE_SECURE"}}
    environ.update(SHIPYARD_HOME=str(tmp_path), SECRET_KEY=get_random_secret_key() * 2,
                   ALLOWED_HOSTS="shipyard.example", SECURE_SSL_REDIRECT="true",
                   SECURE_HSTS_SECONDS="31536000", SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
                   SECURE_HSTS_PRELOAD="true")
    # The security checks only: the others want the editor built (frontend/dist).
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--tag",
                             "security", "--fail-level", "WARNING"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=environ)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_the_deployment_checks_pass_in_production_mode(tmp_path):
    environ = {**os.environ, "SHIPYARD_HOME": str(tmp_path), "DEBUG": "false",
               "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "shipyard.example"}
    environ.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy",
                             "--fail-level", "ERROR"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=environ)
    assert result.returncode == 0, result.stderr


def test_a_bad_trusted_proxy_stops_the_app_at_start_up(tmp_path):
    result = _settings_in_a_fresh_process(tmp_path, SHIPYARD_HOME=str(tmp_path),
                                          SHIPYARD_TRUSTED_PROXIES="10.0.0.0/8, proxy.local")
    assert result.returncode != 0
    assert "SHIPYARD_TRUSTED_PROXIES must list IP addresses" in result.stderr
    assert "'proxy.local'" in result.stderr
