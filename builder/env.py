"""Settings from the environment, read through helpers that fail loudly on a bad value."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

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
