"""Settings from the environment, read through helpers that fail loudly on a bad value."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # NaN too
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, got {raw}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def shipyard_home() -> Path:
    """The one folder everything the app writes lives in (created on first use)."""
    home = Path(env_str("SHIPYARD_HOME", ".shipyard")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def secret_key(home: Path) -> str:
    """SECRET_KEY from the environment, else one made once and kept in SHIPYARD_HOME."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    path = home / "secret_key"
    if not path.exists():
        from django.core.management.utils import get_random_secret_key

        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


def trusted_proxies(name: str) -> list[str]:
    """A list of IP addresses or networks (CIDR), each checked."""
    items = env_list(name, [])
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list IP addresses or networks such as "
                                       f"10.0.0.0/8, got {item!r}") from None
    return items


RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def env_rate(name: str, default: str) -> str:
    """A rate such as "120/minute": a whole number of requests of at least 1 per second,
    minute, hour or day (checked; given back as written, in Django REST framework's form)."""
    raw = env_str(name, default)
    count, _, period = raw.partition("/")
    count, period = count.strip(), period.strip().lower()
    if not (count.isascii() and count.isdigit() and int(count) >= 1 and period in RATE_PERIODS):
        raise ImproperlyConfigured(f"{name} must be a number of requests per second, minute, "
                                   f"hour or day, such as 120/minute, got {raw!r}")
    return f"{int(count)}/{period}"


def shipyard_storage(home: Path) -> dict[str, Any]:
    """STORAGES["shipyard"], the store of runs' files and uploads (docs/deploy.md):
    SHIPYARD_STORAGE=filesystem (the default: under SHIPYARD_STORE_DIR, else SHIPYARD_HOME
    itself) or s3 (SHIPYARD_S3_BUCKET, and SHIPYARD_S3_ENDPOINT_URL, _REGION,
    _ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _PREFIX as needed)."""
    kind = env_str("SHIPYARD_STORAGE", "filesystem").lower()
    if kind in ("filesystem", "file", "files"):
        location = Path(env_str("SHIPYARD_STORE_DIR", str(home))).resolve()
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(location), "allow_overwrite": True}}
    if kind != "s3":
        raise ImproperlyConfigured(f"SHIPYARD_STORAGE must be filesystem or s3, got {kind!r}")
    bucket = env_str("SHIPYARD_S3_BUCKET", "")
    if not bucket:
        raise ImproperlyConfigured("SHIPYARD_STORAGE=s3 needs SHIPYARD_S3_BUCKET, the bucket's "
                                   "name")
    endpoint = env_str("SHIPYARD_S3_ENDPOINT_URL", "")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ImproperlyConfigured("SHIPYARD_S3_ENDPOINT_URL must be an http:// or https:// "
                                   f"address, got {endpoint!r}")
    prefix = env_str("SHIPYARD_S3_PREFIX", "").strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ImproperlyConfigured(f"SHIPYARD_S3_PREFIX must be a plain folder such as "
                                   f"shipyard/prod, got {prefix!r}")
    from botocore.config import Config

    # A store that does not answer is an error within seconds, not a hang: short
    # connection and read timeouts, few retries.
    style = env_str("SHIPYARD_S3_ADDRESSING_STYLE", "path" if endpoint else "auto")
    if style not in ("auto", "path", "virtual"):
        raise ImproperlyConfigured("SHIPYARD_S3_ADDRESSING_STYLE must be auto, path or "
                                   f"virtual, got {style!r}")
    config = Config(connect_timeout=env_float("SHIPYARD_S3_TIMEOUT", 5.0, minimum=0.1),
                    read_timeout=env_float("SHIPYARD_S3_TIMEOUT", 5.0, minimum=0.1) * 6,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": style}, signature_version="s3v4")
    options: dict[str, Any] = {
        "bucket_name": bucket, "location": prefix, "file_overwrite": True,
        "default_acl": None, "querystring_auth": False, "client_config": config,
        "region_name": env_str("SHIPYARD_S3_REGION", "") or None,
        "endpoint_url": endpoint or None,
        "access_key": env_str("SHIPYARD_S3_ACCESS_KEY_ID", "") or None,
        "secret_key": env_str("SHIPYARD_S3_SECRET_ACCESS_KEY", "") or None,
    }
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
