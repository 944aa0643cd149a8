"""Salted hashing of user ids at ingest: the warehouse never holds a shop's raw customer ids.

With hashing on, an adapter replaces each user id by a keyed BLAKE2b hash (63 bits, a positive
BIGINT) of the id's text, keyed with a secret salt from ``BASKETCAST_ID_SALT``. The same id and
salt give the same hash in every file and every run, so a user's history still joins up; without
the salt the hash cannot be recomputed from a guessed id. Quarantined rows keep the hash in place
of the raw id too. Keep the salt out of the warehouse and the repository (a secret store or the
scheduler's environment): changing it re-keys every user.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd

SALT_ENV = "BASKETCAST_ID_SALT"
MIN_SALT_LENGTH = 16
_MASK63 = (1 << 63) - 1


class PrivacyConfigError(ValueError):
    """User-id hashing was asked for without a usable salt; the message says what to set."""


def salt_from_env() -> str:
    """The salt in BASKETCAST_ID_SALT; raises PrivacyConfigError when missing or too short."""
    salt = os.environ.get(SALT_ENV, "")
    if len(salt) < MIN_SALT_LENGTH:
        state = "is not set" if not salt else f"has only {len(salt)} characters"
        raise PrivacyConfigError(
            f"hashing user ids needs a secret salt in {SALT_ENV} of at least "
            f"{MIN_SALT_LENGTH} characters, and it {state}; e.g. "
            f"export {SALT_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return salt


class UserIdHasher:
    """Maps user id text to a salted 63-bit BIGINT."""

    def __init__(self, salt: str) -> None:
        if len(salt) < MIN_SALT_LENGTH:
            raise PrivacyConfigError(f"the salt must have at least {MIN_SALT_LENGTH} characters")
        self._key = hashlib.blake2b(salt.encode("utf-8"), digest_size=32).digest()

    def one(self, text: str) -> int:
        digest = hashlib.blake2b(text.encode("utf-8"), key=self._key, digest_size=8).digest()
        return int.from_bytes(digest, "big") & _MASK63 or 1

    def many(self, texts: pd.Series) -> pd.Series:
        """Hash of every value (as text), hashing each distinct value once."""
        codes, uniques = pd.factorize(texts.astype(str))
        mapped = np.array([self.one(u) for u in uniques], dtype=np.int64)
        return pd.Series(mapped[codes], index=texts.index, dtype="int64")

    def redact(self, text: object) -> object:
        """What a quarantined row keeps of a raw user id: its hash, marked as such."""
        if text is None or (isinstance(text, float) and np.isnan(text)):
            return text
        value = str(text).strip()
        return f"salted:{self.one(value)}" if value else text
