"""Limits on guessing passwords and on making accounts, kept in the shared cache (Redis), so
that every web process counts the same attempts.

A login reserves a slot in three counters before the password is checked: one for the
account tried from the client's address, one for the account from any address (a larger
one: it stops guessing spread over many addresses), and one for the client's address. A
success gives the slots back; a failure keeps them. So one client guessing an account's
password locks that account for itself only: its owner, elsewhere, still logs in. Once a
counter is full, the next attempt is refused, right password or not, until its window
ends. Reserving first (an atomic increment) means that parallel requests cannot all slip
in before the first failure is counted. Sign-ups count accounts made per
address the same way.

The client's address is the connection's, unless that connection comes from a proxy named
in SHIPYARD_TRUSTED_PROXIES: only then is `X-Forwarded-For` read, from the right, past the
trusted proxies. A header from anyone else is the client's own word and is ignored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from builder.env import RATE_PERIODS

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.SHIPYARD_TRUSTED_PROXIES)))


def client_address(meta: dict[str, Any]) -> str:
    """The address a request came from (`meta`: a Django request's META)."""
    address = str(meta.get("REMOTE_ADDR") or "")
    if not _trusted(address):
        return address
    forwarded = [hop.strip() for hop in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for hop in reversed([h for h in forwarded if h]):
        if not _trusted(hop):
            return hop
        address = hop
    return address


IPV6_NETWORK_BITS = 64  # what one subscriber is given at the least, and holds whole
_WITH_PORT = re.compile(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::\d+)?|(?P<v4>[0-9.]+):\d+")


def counted_address(address: str) -> str:
    """Who a visitor's requests count against: an IPv4 address as it is (also when written
    as IPv6, ::ffff:a.b.c.d), an IPv6 address by its /64 network (one home or server is
    given a whole /64 and may send from any address in it, so counting single addresses
    would give it 2**64 allowances), anything else as it is. A port after the address (some
    proxies write `203.0.113.7:51234` or `[2001:db8::1]:51234` in X-Forwarded-For) is left
    out: each connection has another."""
    with_port = _WITH_PORT.fullmatch(address)
    if with_port:
        address = with_port["v6"] or with_port["v4"]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip.packed, IPV6_NETWORK_BITS), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Limit:
    """At most `count` of something per `window` seconds, per key."""

    name: str
    count: int
    window: int


def login_limits() -> tuple[Limit, Limit, Limit]:
    window = settings.SHIPYARD_LOGIN_WINDOW_SECONDS
    return (Limit("login-account", settings.SHIPYARD_LOGIN_FAILURES_PER_ACCOUNT, window),
            Limit("login-account-anywhere",
                  settings.SHIPYARD_LOGIN_FAILURES_PER_ACCOUNT_ANYWHERE, window),
            Limit("login-address", settings.SHIPYARD_LOGIN_FAILURES_PER_ADDRESS, window))


def signup_limit() -> Limit:
    return Limit("signup-address", settings.SHIPYARD_SIGNUPS_PER_ADDRESS,
                 settings.SHIPYARD_SIGNUP_WINDOW_SECONDS)


def _cache_key(limit: Limit, key: str) -> str:
    # Hashed: a username may hold any character, and a key must not.
    return f"throttle:{limit.name}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _cache() -> Any:
    return caches["default"]


def _reserve(limit: Limit, key: str) -> float | None:
    """Take a slot; None if there was one, else the seconds until the window ends."""
    name = _cache_key(limit, key)
    now = time.time()
    try:
        cache = _cache()
        # The window starts at the first attempt; the counter and its start expire with it.
        cache.add(f"{name}:start", now, timeout=limit.window)
        cache.add(name, 0, timeout=limit.window)
        taken = cache.incr(name)
        started = cache.get(f"{name}:start", now)
    except ValueError:
        return None  # the window ended between the two calls: this is a new one's first
    except Exception:
        # Redis is down: the site still lets people log in (nothing else is counted
        # meanwhile), and says so in the log.
        log.warning("the cache cannot be reached; %s is not counted", limit.name, exc_info=True)
        return None
    if taken <= limit.count:
        return None
    _give_back(limit, key)
    return max(1.0, started + limit.window - now)


def _give_back(limit: Limit, key: str) -> None:
    try:
        _cache().decr(_cache_key(limit, key))
    except ValueError:
        pass  # the window ended meanwhile: there is nothing to give back
    except Exception:
        log.warning("the cache cannot be reached; %s is not counted", limit.name, exc_info=True)


class Attempt:
    """One login or sign-up: `refused` is the seconds to wait (None: go ahead). Call
    `succeeded()` when it worked, so that it does not count."""

    def __init__(self, slots: list[tuple[Limit, str]]) -> None:
        self.held: list[tuple[Limit, str]] = []
        self.refused: int | None = None
        for limit, key in slots:
            wait = _reserve(limit, key)
            if wait is not None:
                self.refused = math.ceil(wait)
                self.succeeded()  # a refused attempt holds nothing
                return
            self.held.append((limit, key))

    def succeeded(self) -> None:
        for limit, key in self.held:
            _give_back(limit, key)
        self.held = []


def login_attempt(*, username: str, address: str) -> Attempt:
    from_here, anywhere, per_address = login_limits()
    account = username.strip().casefold()
    address = counted_address(address)  # an IPv6 guesser by its /64, as visitors are
    # (The address after the name: a name holds any character, an address no NUL.)
    return Attempt([(from_here, f"{account}\0{address}"), (anywhere, account),
                    (per_address, address)])


def signup_attempt(*, address: str) -> Attempt:
    # An IPv6 address by its /64: one home could otherwise make accounts without end.
    return Attempt([(signup_limit(), counted_address(address))])


def refusal(what: str, wait: int) -> str:
    """`what` (e.g. "too many failed logins"), and when to try again."""
    minutes = math.ceil(wait / 60)
    return f"{what}: try again in {minutes} minute{'s' if minutes != 1 else ''}"



def anonymous_limit() -> Limit:
    """SHIPYARD_ANON_INSPECT_RATE ("120/minute") as a Limit."""
    count, _, period = str(settings.SHIPYARD_ANON_INSPECT_RATE).partition("/")
    return Limit("anon-engine", int(count), RATE_PERIODS[period])


class AnonymousThrottle(BaseThrottle):
    """What a visitor without an account may ask of the engine (inspection, the code, SQL on
    a drawing), per client address (an IPv6 one by its /64: counted_address):
    SHIPYARD_ANON_INSPECT_RATE, read on every request,
    counted like the login limits (a window that starts at the first request, an atomic
    counter in the shared cache; a refused request is not counted). Requests made with an
    account are not counted. A refused view answers 429 with Retry-After."""

    def __init__(self) -> None:
        self.refused: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        self.refused = _reserve(anonymous_limit(),
                                counted_address(client_address(request.META)))
        return self.refused is None

    def wait(self) -> float | None:
        return None if self.refused is None else math.ceil(self.refused)
