"""The production settings docker/env.example documents: Django's deployment checks pass
with them (every check, not only security's), and what each turns on."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "docker" / "env.example"


def documented_env() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment, less what the tests set, plus the documented values as
    compose passes them (the database URL it makes from POSTGRES_*)."""
    documented = documented_env()
    environ = {k: v for k, v in os.environ.items()
               if k not in documented and k not in {"DATABASE_URL", "DEBUG", "REDIS_URL"}}
    dist = tmp_path / "dist"  # the editor, as the image's Node stage leaves it
    dist.mkdir(exist_ok=True)
    (dist / "manifest.json").write_text("{}")
    environ.update(documented)
    environ.update(
        PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="builder.settings",
        SHIPYARD_HOME=str(tmp_path / "home"), SHIPYARD_EDITOR_DIST=str(dist),
        SHIPYARD_STATIC_ROOT=str(tmp_path / "static"),
        DATABASE_URL=(f"postgres://{documented['POSTGRES_USER']}:"
                      f"{documented['POSTGRES_PASSWORD']}@postgres:5432/"
                      f"{documented['POSTGRES_DB']}"),
        REDIS_URL="redis://redis:6379/0")
    environ.update(extra)
    return environ


def check_deploy(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                           "WARNING"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=environ)


def test_the_deployment_checks_pass_with_the_documented_settings(tmp_path: Path) -> None:
    result = check_deploy(production_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(64)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_the_example_secret_key_is_refused_until_it_is_replaced(tmp_path: Path) -> None:
    result = check_deploy(production_env(tmp_path))
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_the_documented_settings_secure_cookies_hsts_and_the_proxy(tmp_path: Path) -> None:
    code = ("import json, django; from django.conf import settings; django.setup(); "
            "print(json.dumps([settings.DEBUG, settings.SESSION_COOKIE_SECURE, "
            "settings.CSRF_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS, "
            "settings.SECURE_SSL_REDIRECT, settings.SECURE_PROXY_SSL_HEADER, "
            "settings.ALLOWED_HOSTS, settings.CSRF_TRUSTED_ORIGINS, "
            "settings.LOGGING['handlers']['console'].get('formatter'), "
            "settings.DATABASES['default']['OPTIONS']]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60,
                            env=production_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(64)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        False, True, True, 31536000, True, ["HTTP_X_FORWARDED_PROTO", "https"],
        ["shipyard.example.org"], ["https://shipyard.example.org"], "json",
        {"connect_timeout": 5}]


def test_a_bad_log_format_stops_the_app_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env=production_env(tmp_path, SHIPYARD_LOG_FORMAT="xml"))
    assert result.returncode != 0
    assert "SHIPYARD_LOG_FORMAT must be text or json" in result.stderr


STATIC_PROBE = """
import json, re, django
django.setup()
from django.templatetags.static import static
from django.test import Client
from django_vite.templatetags.django_vite import vite_asset
client = Client()
seen = {}
for name, url in [("admin", static("admin/css/base.css")),
                  ("editor", re.search(r'src="([^"]+)"', vite_asset("src/main.tsx"))[1])]:
    response = client.get(url)
    seen[name] = [url, response.status_code, response.get("Cache-Control", "")]
print(json.dumps(seen))
"""


def test_collected_static_files_are_named_by_content_and_cached_for_ever(
        tmp_path: Path) -> None:
    environ = production_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(64),
                             SHIPYARD_STATIC_MANIFEST="1", SECURE_SSL_REDIRECT="false")
    dist = Path(environ["SHIPYARD_EDITOR_DIST"])
    (dist / "assets").mkdir()
    (dist / "assets" / "main-B0CZx4M8.js").write_text("console.log('editor')\n")
    (dist / "manifest.json").write_text(json.dumps({"src/main.tsx": {
        "file": "assets/main-B0CZx4M8.js", "src": "src/main.tsx", "isEntry": True}}))
    collect = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput",
                              "-v", "0"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300, env=environ)
    assert collect.returncode == 0, collect.stderr
    probe = subprocess.run([sys.executable, "-c", STATIC_PROBE], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120,
                           env={**environ, "ALLOWED_HOSTS": "testserver"})
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    for name in ("admin", "editor"):
        url, status, cache = seen[name]
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", url), (name, url)
        assert status == 200, (name, url)
        assert "max-age=315360000" in cache and "immutable" in cache, (name, cache)
