"""API keys: made for a user, shown once, kept as a SHA-256 digest, revocable.

A key is `goc_` and 43 URL-safe characters (256 random bits). Looking one up hashes what the
request carries and finds the digest: the stored table never holds a usable key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from core.errors import InputError, NotFoundError
from storage.repository import Repository
from storage.schema import ApiKey, utcnow

KEY_PREFIX = "goc_"
KEY_BYTES = 32
SHOWN_CHARS = 12  # how much of a key the listing shows: enough to tell keys apart, useless to use
OWNER = re.compile(r"^(hf:)?[A-Za-z0-9_.@-]{1,64}$")
MAX_LABEL = 100
LAST_USED_EVERY_S = 60  # last_used is refreshed at most once a minute per key (a write per request is waste)


@dataclass
class KeyInfo:
    id: int
    owner: str
    label: str
    prefix: str
    created: str
    last_used: str | None
    revoked: bool


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(k: ApiKey) -> KeyInfo:
    return KeyInfo(k.id, k.owner, k.label, k.prefix, k.created.isoformat(timespec="seconds"),
                   k.last_used.isoformat(timespec="seconds") if k.last_used else None, k.revoked is not None)


class ApiKeys:
    def __init__(self, repo: Repository):
        self.repo = repo

    def create(self, owner: str, label: str = "") -> tuple[str, KeyInfo]:
        """A new key for `owner`: the key itself (shown once, never stored) and its listing."""
        if not OWNER.match(owner):
            raise InputError("A key's owner is a user name (letters, digits, _ . @ -), or hf:NAME for a "
                             "Hugging Face user.")
        if len(label) > MAX_LABEL:
            raise InputError(f"A key's label is at most {MAX_LABEL} characters.")
        key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
        row = ApiKey(owner=owner, label=label, digest=digest(key), prefix=key[:SHOWN_CHARS], created=utcnow())
        with self.repo.writing() as s:
            s.add(row)
            s.flush()
            return key, _info(row)

    def owner_of(self, key: str) -> str | None:
        """The owner of a working key, or None (unknown or revoked)."""
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        with self.repo.session() as s:
            row = s.scalars(select(ApiKey).where(ApiKey.digest == digest(key), ApiKey.revoked.is_(None))).first()
            if row is None:
                return None
            owner, stale = row.owner, row.last_used is None or (utcnow() - row.last_used).total_seconds() > \
                LAST_USED_EVERY_S
            key_id = row.id
        if stale:
            with self.repo.writing() as s:
                s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used=utcnow()))
        return owner

    def list(self, owner: str | None = None) -> list[KeyInfo]:
        with self.repo.session() as s:
            query = select(ApiKey).order_by(ApiKey.id)
            if owner:
                query = query.where(ApiKey.owner == owner)
            return [_info(k) for k in s.scalars(query)]

    def revoke(self, key_id: int) -> KeyInfo:
        with self.repo.writing() as s:
            row = s.get(ApiKey, key_id)
            if row is None:
                raise NotFoundError("There is no API key with that id (see `key list`).")
            row.revoked = row.revoked or utcnow()
            return _info(row)

    def revoke_owner(self, owner: str) -> int:
        """Revoke every working key of `owner` (the user was removed); how many were."""
        with self.repo.writing() as s:
            return s.execute(update(ApiKey).where(ApiKey.owner == owner, ApiKey.revoked.is_(None))
                             .values(revoked=utcnow())).rowcount

    def any(self) -> bool:
        with self.repo.session() as s:
            return s.scalars(select(ApiKey.id).where(ApiKey.revoked.is_(None)).limit(1)).first() is not None
