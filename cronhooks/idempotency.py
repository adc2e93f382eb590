"""Idempotency keys: one run per key, whatever the scheduler retries.

Follows draft-ietf-httpapi-idempotency-key-header: a key already completed
gets the first run's result again (a replay), a key whose run was accepted
in the background gets the same 202 and status URL until it finishes, a key
still running inline gets 409,
the same key with other parameters 422, a malformed key 400.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import Q
from django.utils import timezone

from cronhooks.conf import conf
from cronhooks.exceptions import (
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from cronhooks.jobs import Job
from cronhooks.liveness import holder_gone, queue_expired
from cronhooks.log import get_logger
from cronhooks.models import IdempotencyKey, JobRun

logger = get_logger()

# Seconds between claiming a key and recording its run (taking the lock in
# between) beyond which the claim is taken to be dead.
UNRECORDED_GRACE = 60

IDEMPOTENCY_HEADER = "Idempotency-Key"
# As Stripe names it: the answer is a stored one, the job did not run again.
REPLAYED_HEADER = "Idempotent-Replayed"
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
    if value in ("", '""'):
        raise InvalidIdempotencyKey(f"The {IDEMPOTENCY_HEADER} header is empty.")
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
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(
            f"The {IDEMPOTENCY_HEADER} header is longer than {MAX_KEY_LENGTH} "
            "characters."
        )
    return key


def fingerprint(params: Mapping[str, Any]) -> str:
    """The validated parameters, defaults included, as one comparable digest.

    Validated, so ``?delta=25``, ``{"delta": 25}`` and no parameter at all
    (when 25 is the default) are the same request.
    """
    canonical = json.dumps(params, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(
    job: Job, key: str, params: Mapping[str, Any], run_id: uuid.UUID
) -> JobRun | None:
    """Reserve ``key`` for the run ``run_id`` of ``job``.

    Returns None when the key is now this run's, or the run whose result (or
    202, when it runs in the background) must be replayed: the latest attempt.
    Raises ``IdempotencyKeyInProgress`` or ``IdempotencyKeyReused`` otherwise.
    """
    digest = fingerprint(params)
    now = timezone.now()
    expires = now + timedelta(seconds=conf.idempotency_retention)
    for _ in range(3):
        try:
            # A savepoint, so a lost race does not break a caller's transaction.
            with transaction.atomic(using=router.db_for_write(IdempotencyKey)):
                IdempotencyKey.objects.create(
                    job=job.name,
                    key=key,
                    fingerprint=digest,
                    run_id=run_id,
                    created_at=now,
                    expires_at=expires,
                )
            return None
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(job=job.name, key=key).first()
        if existing is None:
            continue  # expired and pruned meanwhile: insert again
        if existing.expires_at <= now:
            # Forgotten: the key is free again. Conditional, so of two
            # requests taking it over only one wins.
            if _take_over(existing, digest, run_id, now, expires, expires_at__lte=now):
                return None
            continue
        if existing.fingerprint != digest:
            raise IdempotencyKeyReused(
                f"This {IDEMPOTENCY_HEADER} was first used with other parameters; "
                "use a new key for a different request."
            )
        run = latest_attempt(existing.run_id)
        if _never_finishes(run, existing, job, now):
            # No result will ever come for the key, so a retry may run the
            # job. Conditional, so of two retries taking it over one wins.
            # Compare-and-swap on the claim as read: a confirm() by its owner
            # in between (it was only slow) makes this take-over fail.
            if _take_over(
                existing,
                digest,
                run_id,
                now,
                expires,
                run_id=existing.run_id,
                created_at=existing.created_at,
            ):
                return None
            continue
        if run is None or (
            run.status == JobRun.Status.RUNNING and run.queued_at is None
        ):
            # An inline run still going: its answer is not known yet.
            raise IdempotencyKeyInProgress(
                f"A request with this {IDEMPOTENCY_HEADER} is still running "
                f"(run {existing.run_id})."
            )
        # Finished, or accepted in the background (answered 202 again).
        return run
    raise IdempotencyKeyInProgress(
        f"Another request with this {IDEMPOTENCY_HEADER} is being handled."
    )


def latest_attempt(run_id: uuid.UUID) -> JobRun | None:
    """The run a key started, or its latest retry: the key's answer."""
    return (
        JobRun.objects.filter(Q(id=run_id) | Q(retry_of=run_id))
        .order_by("-attempt")
        .first()
    )


def _never_finishes(
    run: JobRun | None, existing: IdempotencyKey, job: Job, now: datetime
) -> bool:
    """Whether the key's run died (or was refused) before giving it a result."""
    if run is None:
        # Claimed, but its run was never recorded: only a trigger that died
        # (or lost its database) between the two stays like this for long.
        return existing.created_at < now - timedelta(seconds=UNRECORDED_GRACE)
    if run.status in (JobRun.Status.ABANDONED, JobRun.Status.REJECTED):
        return True
    if run.status == JobRun.Status.QUEUED:
        return queue_expired(job, run, now)
    # A live run renews its lock; one "running" past its lock TTL without
    # holding it was left behind by a holder that died. A run that never had
    # a lock (FAIL_OPEN) cannot be told from a dead one: it keeps its key.
    return (
        run.status == JobRun.Status.RUNNING
        and run.fencing_token is not None
        and run.started_at < now - timedelta(seconds=job.lock_ttl)
        and holder_gone(run)
    )


def confirm(job: Job, key: str, run_id: uuid.UUID) -> bool:
    """Whether ``run_id`` still owns ``key``, refreshing its claim if so.

    Called once the lock is taken, just before the run is recorded: a trigger
    that stalled so long that a retry took its key over must not run too.
    """
    return bool(
        IdempotencyKey.objects.filter(job=job.name, key=key, run_id=run_id).update(
            created_at=timezone.now()
        )
    )


def _take_over(
    existing: IdempotencyKey,
    digest: str,
    new_run_id: uuid.UUID,
    now: datetime,
    expires: datetime,
    **condition: object,
) -> bool:
    return bool(
        IdempotencyKey.objects.filter(pk=existing.pk, **condition).update(
            fingerprint=digest, run_id=new_run_id, created_at=now, expires_at=expires
        )
    )


def release(job: Job, key: str, run_id: uuid.UUID) -> None:
    """Forget a key whose trigger was refused before its job ran.

    A refused trigger has no result worth replaying; the retry that follows
    (after a 503, say) must be free to run the job.
    """
    try:
        IdempotencyKey.objects.filter(job=job.name, key=key, run_id=run_id).delete()
    except DatabaseError:
        # It expires after IDEMPOTENCY_RETENTION anyway.
        logger.exception("idempotency_release_failed")


def prune() -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
