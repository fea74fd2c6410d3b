"""Writing side of accounts: API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from builder import access

from .models import ApiToken

TOKEN_BYTES = 32  # 256 bits


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`: the row and the raw token, which is never stored."""
    raw = "shp_" + secrets.token_urlsafe(TOKEN_BYTES)
    token = ApiToken.objects.create(user=user, name=name[:100], key_hash=hash_token(raw),
                                    prefix=raw[4:12])
    return token, raw


def revoke_token(*, user: AbstractBaseUser, token_id: int) -> bool:
    """Revoke one of `user`'s tokens; False if there is no such live token."""
    changed = ApiToken.objects.filter(id=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
    access.access_changed(access.token_group(token_id))  # its open sockets close
    return changed == 1
