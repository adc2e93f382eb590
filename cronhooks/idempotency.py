"""Idempotency keys: one run per key, whatever the scheduler retries.

Follows draft-ietf-httpapi-idempotency-key-header: a key already completed
gets the first run's result again (a replay), a key still running gets 409,
the same key with other parameters 422, a malformed key 400.
"""

from __future__ import annotations

import re

from cronhooks.exceptions import InvalidIdempotencyKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# The draft makes the value a Structured Field string ("..."); bare values,
# as Stripe and most clients send them, are accepted too. Printable ASCII only.
_BARE_RE = re.compile(r"[\x21\x23-\x7e][\x20-\x7e]*")
_QUOTED_RE = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')


def idempotency_key(header: str | None) -> str:
    """The key a request carries, "" for none, or ``InvalidIdempotencyKey``."""
    if header is None:
        return ""
    value = header.strip(" \t")
    quoted = _QUOTED_RE.fullmatch(value)
    if quoted:
        key = re.sub(r"\\(.)", r"\1", quoted.group(1))
    elif _BARE_RE.fullmatch(value) and not value.endswith(" "):
        key = value
    else:
        raise InvalidIdempotencyKey(
            f"The {IDEMPOTENCY_HEADER} header must be printable ASCII, optionally "
            "in double quotes, without control characters."
        )
    if not key:
        raise InvalidIdempotencyKey(f"The {IDEMPOTENCY_HEADER} header is empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(
            f"The {IDEMPOTENCY_HEADER} header is longer than {MAX_KEY_LENGTH} "
            "characters."
        )
    return key
