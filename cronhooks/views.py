"""HTTP entry points: parse, authenticate, delegate to ``run_job``, render."""

from __future__ import annotations

import json
import re
import uuid
from contextlib import suppress
from dataclasses import replace
from typing import Any

import structlog
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from cronhooks import responses
from cronhooks.auth import authenticate, trigger_methods
from cronhooks.authenticators import Authenticator
from cronhooks.authenticators.bearer import bearer_token, matches_any
from cronhooks.clients import check_network, client_address
from cronhooks.conf import conf
from cronhooks.exceptions import (
    AuthenticationFailed,
    BackendUnavailable,
    BodyTooLarge,
    InvalidBody,
    InvalidParameters,
    MethodNotAllowed,
    MetricsUnavailable,
    TriggerRejected,
    UnknownEndpoint,
    UnknownRun,
)
from cronhooks.health import job_page, lock_backend_description, run_checks
from cronhooks.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, idempotency_key
from cronhooks.log import correlation_id, get_logger
from cronhooks.models import JobRun
from cronhooks.ratelimit import check_client, check_job, record_auth_failure
from cronhooks.runs import Outcome, Trigger, reject, run_job
from cronhooks.runs.outcome import run_json
from cronhooks.runs.tasks import runs_in_workers
from cronhooks.status import job_statuses

CORRELATION_HEADER = "X-Correlation-ID"
# RFC 7240: a preference token, optionally "=value", each preference
# separated by commas and its parameters by semicolons.
_PREFERENCE_RE = re.compile(r"\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(?:=|;|$)")
RESPOND_ASYNC = "respond-async"

logger = get_logger()


def _respond(
    body: dict[str, Any],
    *,
    status: int,
    correlation: str,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    response = JsonResponse(body, status=status, headers=headers)
    response[CORRELATION_HEADER] = correlation
    # cronhooks logs every outcome itself (without the query string); this
    # stops django.request from logging the request's repr, which would show a
    # token a caller wrongly put in the URL.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _refusal(rejection: TriggerRejected, correlation: str) -> JsonResponse:
    """A refused read (of /health or a run's status): nothing is recorded."""
    return _respond(
        {"status": "rejected", "error": responses.error_body(rejection)},
        status=responses.status_code(rejection),
        correlation=correlation,
        headers=responses.headers(rejection),
    )


# Multipart too: Django's test client sends an empty one by default.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def read_params(request: HttpRequest) -> dict[str, object]:
    """Parameters from the query string and a JSON object (or form) body."""
    limit = conf.max_body_size
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not (declared.isascii() and declared.isdigit()):
        raise InvalidBody("Content-Length is not a number.")
    # Compare lengths first: int() of a huge digit string is itself an error.
    if len(declared) > len(str(limit)) or int(declared) > limit:
        raise BodyTooLarge(f"The body is larger than {limit} bytes.")
    params = _single_values(request.GET, "query string")
    body = request.body
    if len(body) > limit:
        raise BodyTooLarge(f"The body is larger than {limit} bytes.")
    if request.content_type in FORM_TYPES:
        data = _form_params(request)
    elif body.strip():
        data = _json_params(body)
    else:
        data = {}
    both = dict.fromkeys(data, "given in both the query string and the body")
    both = {name: reason for name, reason in both.items() if name in params}
    if both:
        raise InvalidParameters("Each parameter may be given once.", details=both)
    return {**params, **data}


def _single_values(values: QueryDict, where: str) -> dict[str, object]:
    repeated = {
        name: "given more than once" for name in values if len(values.getlist(name)) > 1
    }
    if repeated:
        raise InvalidParameters(
            f"Each parameter may be given once in the {where}.", details=repeated
        )
    return dict(values.items())


def _form_params(request: HttpRequest) -> dict[str, object]:
    # curl -d '{"delta": 5}' without a Content-Type sends JSON labelled as a form.
    if request.body.lstrip().startswith(b"{"):
        raise InvalidBody(
            "The body looks like JSON but is labelled as a form; send "
            "'Content-Type: application/json'."
        )
    if request.FILES:
        raise InvalidBody("File uploads are not accepted.")
    return _single_values(request.POST, "body")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a key is given more than once")
    return data


def _json_params(body: bytes) -> dict[str, object]:
    try:
        data = json.loads(
            body, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; absurd nesting
    # is a RecursionError.
    except (ValueError, RecursionError) as error:
        reason = "too deeply nested" if isinstance(error, RecursionError) else error
        raise InvalidBody(f"The body is not valid JSON: {reason}.") from None
    if not isinstance(data, dict):
        raise InvalidBody("The body must be a JSON object of parameters.")
    nested = {
        name: "must be a single value, not a list or an object"
        for name, value in data.items()
        if isinstance(value, dict | list)
    }
    if nested:
        raise InvalidParameters("Parameters are single values.", details=nested)
    return data


def prefers_async(request: HttpRequest) -> bool:
    """Whether a ``Prefer`` header asks for ``respond-async`` (RFC 7240).

    Preference names are case-insensitive; anything unreadable is ignored,
    as the RFC asks of a server.
    """
    for header in request.headers.get("Prefer", "").split(","):
        match = _PREFERENCE_RE.match(header)
        if match and match.group(1).lower() == RESPOND_ASYNC:
            return True
    return False


def _status_url(request: HttpRequest | None, outcome: Outcome) -> str:
    url = outcome.status_url
    if request is not None and not conf.base_url:
        url = request.build_absolute_uri(url)
    return url


def render_outcome(
    outcome: Outcome, request: HttpRequest | None = None, *, preferred: bool = False
) -> JsonResponse:
    headers = responses.outcome_headers(outcome)
    if outcome.replay is not None:
        headers[REPLAYED_HEADER] = "true"
    body = outcome.as_dict()
    if outcome.accepted:
        body["status_url"] = headers["Location"] = _status_url(request, outcome)
        if preferred:
            headers["Preference-Applied"] = RESPOND_ASYNC
    return _respond(
        body,
        status=responses.outcome_status(outcome),
        correlation=(outcome.replay or outcome.run).correlation_id,
        headers=headers,
    )


# Bearer tokens, not cookies, authenticate these views: CSRF does not apply.
# Not wrapped in ATOMIC_REQUESTS: the "running" record must be visible at once.
@csrf_exempt
@transaction.non_atomic_requests
def trigger(request: HttpRequest, job: str) -> JsonResponse:
    trigger = Trigger(
        job=job,
        source=JobRun.Source.HTTP,
        correlation_id=correlation_id(request.headers.get(CORRELATION_HEADER)),
        client=client_address(request),
    )
    # Refusals before authentication are logged and counted, never stored:
    # anyone can send them, and the run history is not theirs to fill.
    authenticated = False
    try:
        # First: a caller from elsewhere learns nothing, and a credential it
        # sends (a signature accepted once) is not spent.
        check_network(request)
        accepted_by, failed = authentication(request)
        authenticated = failed is None
        if failed is not None:
            check_client(request)
        methods = trigger_methods(accepted_by)
        if request.method not in methods:
            raise MethodNotAllowed(str(request.method), methods)
        if failed is not None:
            record_auth_failure(request)
            raise failed
        check_job(job)
        key = idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        params = read_params(request)
        # Without task workers (no backend, or the ImmediateBackend, Django 6's
        # default) the preference cannot be honoured: the job runs here, as
        # RFC 7240 allows.
        preferred = prefers_async(request) and runs_in_workers()
    except TriggerRejected as rejection:
        outcome = reject(trigger, rejection, record=authenticated)
    # Django's own refusals while parsing the request, answered in JSON too.
    except RequestDataTooBig:
        outcome = reject(
            trigger, BodyTooLarge("The body is too large."), record=authenticated
        )
    except (SuspiciousOperation, MultiPartParserError) as error:
        message = f"The request could not be parsed ({type(error).__name__})."
        outcome = reject(trigger, InvalidBody(message), record=authenticated)
    else:
        outcome = run_job(
            replace(trigger, params=params, idempotency_key=key, background=preferred)
        )
        return render_outcome(outcome, request, preferred=preferred)
    return render_outcome(outcome, request)


# Read-only and token-authenticated, like /health.
@csrf_exempt
@transaction.non_atomic_requests
def run_status(request: HttpRequest, run_id: str) -> JsonResponse:
    correlation = correlation_id(request.headers.get(CORRELATION_HEADER))
    with structlog.contextvars.bound_contextvars(correlation_id=correlation):
        try:
            body = _run_status(request, run_id)
        except TriggerRejected as rejection:
            return _refusal(rejection, correlation)
    return _respond(body, status=200, correlation=correlation)


def _run_status(request: HttpRequest, run_id: str) -> dict[str, Any]:
    check_network(request)
    failed = authentication_failure(request)
    if failed is not None:
        check_client(request)
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(str(request.method), ("GET", "HEAD"))
    if failed is not None:
        logger.warning("run_status_auth_failed", error=failed.message)
        record_auth_failure(request)
        raise failed
    unknown = UnknownRun(f"There is no run with id {run_id[:64]!r}.")
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        raise unknown from None
    try:
        run = JobRun.objects.filter(id=parsed).first()
        retries = (
            []
            if run is None
            else [
                str(retry)
                for retry in JobRun.objects.filter(retry_of=run.retry_of or run.id)
                .filter(attempt__gt=run.attempt)
                .order_by("attempt")
                .values_list("id", flat=True)
            ]
        )
    except DatabaseError:
        logger.exception("run_status_unavailable")
        raise BackendUnavailable("The run history is unavailable.") from None
    if run is None:
        raise unknown
    return run_json(run, retries=retries)


# Read-only and token-authenticated: a POST is answered 405, not a CSRF page.
# Not atomic: with the database down, answer 503 rather than fail to start.
@csrf_exempt
@transaction.non_atomic_requests
def health(request: HttpRequest) -> JsonResponse:
    correlation = correlation_id(request.headers.get(CORRELATION_HEADER))
    with structlog.contextvars.bound_contextvars(correlation_id=correlation):
        return _health(request, correlation)


def _health(request: HttpRequest, correlation: str) -> JsonResponse:
    try:
        # First: a caller from elsewhere learns nothing, and spends nothing.
        check_network(request)
        failed = authentication_failure(request)
        if failed is not None:
            check_client(request)
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(str(request.method), ("GET", "HEAD"))
        page = _page_number(request) if failed is None else 1
    except TriggerRejected as rejection:
        return _refusal(rejection, correlation)
    statuses = None
    if failed is None:
        # Read once, for the critical jobs' check and the detail alike; with
        # the database down, the database check says so and the rest helps.
        with suppress(DatabaseError):
            statuses = job_statuses()
    results = run_checks(statuses)
    healthy = all(result.ok for result in results)
    body: dict[str, Any] = {"status": "healthy" if healthy else "unhealthy"}
    if failed is None:
        body["checks"] = {
            result.name: {"ok": result.ok, "detail": result.detail}
            for result in results
        }
        body["enabled"] = conf.enabled
        body["environment"] = conf.environment
        body["locks"] = lock_backend_description()
        body["jobs"] = body["jobs_summary"] = None
        if statuses is not None:
            body["jobs"], body["jobs_summary"] = job_page(
                statuses, page, conf.health_jobs
            )
    elif failed.presented:
        # A wrong credential still gets the anonymous answer, but is logged
        # and counted: the detail answer would tell a guesser it had found one.
        logger.warning("health_auth_failed", error=failed.message)
        record_auth_failure(request)
    return _respond(body, status=200 if healthy else 503, correlation=correlation)


def _page_number(request: HttpRequest) -> int:
    """Which page of the jobs /health's detail lists: ``?page=N``, from 1."""
    value = request.GET.get("page", "1")
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 10**6:
        raise InvalidParameters(
            "'page' must be a whole number from 1.", details={"page": "invalid"}
        )
    return int(value)


# Read-only and token-authenticated, like /health; the text Prometheus reads,
# refusals in JSON like every other answer.
@csrf_exempt
@transaction.non_atomic_requests
def metrics(request: HttpRequest) -> HttpResponse:
    correlation = correlation_id(request.headers.get(CORRELATION_HEADER))
    with structlog.contextvars.bound_contextvars(correlation_id=correlation):
        try:
            text, content_type = _metrics(request)
        except TriggerRejected as rejection:
            return _refusal(rejection, correlation)
    response = HttpResponse(text, content_type=content_type)
    response[CORRELATION_HEADER] = correlation
    return response


def _metrics(request: HttpRequest) -> tuple[bytes, str]:
    check_network(request)
    failed = authentication_failure(request)
    if failed is not None and metrics_token_matches(request):
        failed = None
    if failed is not None:
        check_client(request)
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(str(request.method), ("GET", "HEAD"))
    if failed is not None:
        logger.warning("metrics_auth_failed", error=failed.message)
        record_auth_failure(request)
        raise failed
    try:
        from prometheus_client import CONTENT_TYPE_LATEST

        from cronhooks.observability.metrics import render_metrics
    except ImportError:
        raise MetricsUnavailable(
            "prometheus-client is not installed: pip install "
            "'django-cronhooks[metrics]'."
        ) from None
    try:
        return render_metrics(), CONTENT_TYPE_LATEST
    except DatabaseError:
        logger.exception("metrics_unavailable")
        raise BackendUnavailable("The run history is unavailable.") from None


def metrics_token_matches(request: HttpRequest) -> bool:
    """Whether the request carries one of ``METRICS_TOKENS``, which read the
    metrics and nothing else."""
    if not conf.metrics_tokens:
        return False
    try:
        token = bearer_token(request)
    except AuthenticationFailed:
        return False  # the authenticators said why already
    return token is not None and matches_any(token, conf.metrics_tokens)


# Any method: a POST must get this JSON, not the CSRF failure page.
@csrf_exempt
def not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """A path of cronhooks' that no view serves: JSON like every other answer,
    and unlike a redirect, never repeating the path or query string back.

    Whatever a project's pattern captures for it is ignored.
    """
    return _refusal(
        UnknownEndpoint(
            "Not found: cronhooks serves POST cron/<job>, GET cron/runs/<run_id>, "
            "GET cron/metrics and GET health."
        ),
        correlation_id(request.headers.get(CORRELATION_HEADER)),
    )


def authentication_failure(request: HttpRequest) -> AuthenticationFailed | None:
    """Why the request is not authenticated, or None when it is."""
    return authentication(request)[1]


def authentication(
    request: HttpRequest,
) -> tuple[Authenticator | None, AuthenticationFailed | None]:
    """Which authenticator accepts the request, or why none does.

    Only requests without a valid token are limited per address: a Worker
    shares its egress addresses with every other Cloudflare customer, so a
    stranger's failures must never lock the scheduler out. Holders of a
    token are limited per job instead; guessing a token of 32 or more random
    characters is hopeless with or without a limit.
    """
    try:
        return authenticate(request), None
    except AuthenticationFailed as error:
        return None, error
