"""Rate limits: per job, per client address and per failed authentication.

Every limit here is a fixed window on a stopped clock, so each test knows
exactly how many seconds are left in the window.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import time_machine
from django.test import Client
from django_redis import get_redis_connection

from cronhooks.models import JobRun
from cronhooks.ratelimit import Limit, parse_limit
from cronhooks.testing import trigger
from tests.conftest import JsonLines
from tests.settings import CRONHOOKS
from tests.test_checks import check_error_codes

pytestmark = pytest.mark.django_db

WRONG_TOKEN = "wrong-token-0123456789abcdefghijklmnopqrstuvwxyz"


def next_boundary(period: int) -> int:
    """The next time, in epoch seconds, a window of ``period`` seconds starts.

    Near the real time on purpose: the database's own clock is not moved.
    """
    return (int(time.time()) // period + 1) * period


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """A stopped clock 15 seconds into a minute: 45 seconds left in its window."""
    with time_machine.travel(next_boundary(60) + 15, tick=False) as traveller:
        yield traveller


def limit_to(settings: Any, **limits: object) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "RATE_LIMITS": limits}


def statuses(responses: list[Any]) -> list[int]:
    return [response.status_code for response in responses]


def refused_client(json_lines: JsonLines, response: Any) -> str:
    """The caller address logged for a refusal (not stored: unauthenticated)."""
    [line] = [
        line
        for line in json_lines()
        if line["message"] == "trigger_rejected"
        and line["correlation_id"] == response["X-Correlation-ID"]
    ]
    assert line["recorded"] is False
    client: str = line["client"]
    return client


def assert_rate_limited(response: Any, retry_after: int) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == str(retry_after)
    body = response.json()
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "rate_limited"


# Per job


@pytest.mark.usefixtures("clock")
def test_the_nth_trigger_of_a_job_runs_and_the_next_gets_429(
    client: Client, settings: Any
) -> None:
    limit_to(settings, PER_JOB="3/m")

    allowed = [trigger(client, "ping") for _ in range(3)]
    refused = trigger(client, "ping")

    assert statuses(allowed) == [200, 200, 200]
    assert_rate_limited(refused, retry_after=45)
    assert refused.json()["error"]["message"] == (
        "More than 3 triggers of job 'ping' in 1 minute; retry in 45 seconds."
    )


def test_a_job_runs_again_once_its_window_has_passed(
    client: Client, settings: Any, clock: time_machine.Traveller
) -> None:
    limit_to(settings, PER_JOB="2/m")
    trigger(client, "ping")
    trigger(client, "ping")
    clock.shift(44)
    last_second = trigger(client, "ping")
    clock.shift(1)  # the next minute starts
    next_window = trigger(client, "ping")

    assert_rate_limited(last_second, retry_after=1)
    assert next_window.status_code == 200


def test_retry_after_counts_to_the_end_of_a_multi_minute_window(
    client: Client, settings: Any, clock: time_machine.Traveller
) -> None:
    limit_to(settings, PER_JOB="1/5m")
    clock.move_to(next_boundary(300) + 60)
    trigger(client, "ping")

    assert_rate_limited(trigger(client, "ping"), retry_after=240)


def test_retry_after_is_at_least_one_second(
    client: Client, settings: Any, clock: time_machine.Traveller
) -> None:
    limit_to(settings, PER_JOB="1/m")
    clock.shift(44.5)  # half a second left
    trigger(client, "ping")

    assert_rate_limited(trigger(client, "ping"), retry_after=1)


def test_a_retry_of_a_rate_limited_tick_runs_the_job_once_the_window_resets(
    client: Client, settings: Any, clock: time_machine.Traveller
) -> None:
    # The Worker retries a 429 after Retry-After with the tick's same key: the
    # refusal must not be what that key replays.
    limit_to(settings, PER_JOB="1/m")
    trigger(client, "ping", headers={"Idempotency-Key": "tick-1"})
    refused = trigger(client, "ping", headers={"Idempotency-Key": "tick-2"})
    clock.shift(int(refused["Retry-After"]))

    retried = trigger(client, "ping", headers={"Idempotency-Key": "tick-2"})

    assert refused.status_code == 429
    assert retried.status_code == 200
    assert retried.json()["status"] == "succeeded"
    assert JobRun.objects.filter(status=JobRun.Status.SUCCEEDED).count() == 2


@pytest.mark.usefixtures("clock")
def test_the_per_job_limit_is_counted_per_job(client: Client, settings: Any) -> None:
    limit_to(settings, PER_JOB="1/m")
    trigger(client, "ping")

    assert trigger(client, "ping").status_code == 429
    assert trigger(client, "echo").status_code == 200


@pytest.mark.usefixtures("clock")
def test_the_per_job_limit_counts_only_authenticated_triggers(
    client: Client, settings: Any
) -> None:
    limit_to(settings, PER_JOB="2/m", AUTH_FAILURES=None)
    refused = [trigger(client, "ping", token=WRONG_TOKEN) for _ in range(3)]

    allowed = [trigger(client, "ping") for _ in range(2)]

    assert statuses(refused) == [401, 401, 401]
    assert statuses(allowed) == [200, 200]
    assert trigger(client, "ping").status_code == 429


@pytest.mark.usefixtures("clock")
def test_the_per_job_limit_holds_whoever_triggers(
    client: Client, settings: Any
) -> None:
    limit_to(settings, PER_JOB="1/m")
    trigger(client, "ping")

    other_address = Client(REMOTE_ADDR="10.0.0.2")

    assert trigger(other_address, "ping").status_code == 429


@pytest.mark.usefixtures("clock")
def test_a_rate_limited_trigger_is_recorded_as_rejected(
    client: Client, settings: Any
) -> None:
    limit_to(settings, PER_JOB="1/m")
    trigger(client, "ping")

    response = trigger(client, "ping")

    run = JobRun.objects.get(id=response.json()["run_id"])
    assert run.status == JobRun.Status.REJECTED
    assert run.reason == "rate_limited"
    assert run.job == "ping"
    assert run.error == response.json()["error"]["message"]
    assert JobRun.objects.filter(status=JobRun.Status.SUCCEEDED).count() == 1


# Per client address: requests without a valid token


def anonymous(client: Client, job: str = "ping", **headers: str) -> Any:
    """A trigger without a token, as a stranger (or a flood) sends it."""
    return client.post(f"/cron/{job}", headers=headers)


@pytest.mark.usefixtures("clock")
def test_the_per_ip_limit_counts_every_job_and_health_together(
    client: Client, settings: Any
) -> None:
    limit_to(settings, PER_IP="3/m")

    allowed = [
        anonymous(client, "ping"),
        anonymous(client, "echo"),
        client.get("/health"),
    ]

    assert statuses(allowed) == [401, 401, 200]
    assert_rate_limited(anonymous(client, "ee-recent"), retry_after=45)
    assert_rate_limited(client.get("/health"), retry_after=45)


@pytest.mark.usefixtures("clock")
def test_token_holders_are_never_limited_per_address(
    client: Client, settings: Any, auth: dict[str, str]
) -> None:
    # A Worker shares its egress addresses with every other Cloudflare
    # customer: strangers from the same address must not lock it out.
    limit_to(settings, PER_IP="1/m")
    anonymous(client)
    assert anonymous(client).status_code == 429

    answers = [trigger(client, "ping"), trigger(client, "echo")]
    health = client.get("/health", headers=auth)

    assert statuses([*answers, health]) == [200, 200, 200]
    assert "jobs" in health.json()


@pytest.mark.usefixtures("clock")
def test_health_over_the_limit_answers_429_in_json(
    client: Client, settings: Any
) -> None:
    limit_to(settings, PER_IP="1/m")
    client.get("/health")

    response = client.get("/health")

    assert response.status_code == 429
    assert response["Retry-After"] == "45"
    assert response["X-Correlation-ID"]
    assert response.json() == {
        "status": "rejected",
        "error": {
            "code": "rate_limited",
            "message": "More than 1 requests from this address in 1 minute; "
            "retry in 45 seconds.",
        },
    }


@pytest.mark.usefixtures("clock")
def test_the_per_ip_limit_counts_requests_refused_for_their_method(
    client: Client, settings: Any
) -> None:
    limit_to(settings, PER_IP="2/m")

    assert client.get("/cron/ping").status_code == 405
    assert client.post("/health").status_code == 405
    assert anonymous(client).status_code == 429


@pytest.mark.usefixtures("clock")
def test_the_per_ip_limit_is_counted_per_address(client: Client, settings: Any) -> None:
    limit_to(settings, PER_IP="1/m")
    anonymous(client)

    assert anonymous(client).status_code == 429
    assert anonymous(Client(REMOTE_ADDR="10.0.0.2")).status_code == 401


@pytest.mark.usefixtures("clock")
def test_an_ipv6_host_is_counted_by_its_slash_64(
    settings: Any, json_lines: JsonLines
) -> None:
    # A host may pick any address in its /64: each is not a fresh allowance.
    limit_to(settings, PER_IP="1/m")
    anonymous(Client(REMOTE_ADDR="2001:db8:1:2::1"))

    same_network = anonymous(Client(REMOTE_ADDR="2001:db8:1:2:ffff::9"))
    next_network = anonymous(Client(REMOTE_ADDR="2001:db8:1:3::1"))

    assert statuses([same_network, next_network]) == [429, 401]
    assert refused_client(json_lines, same_network) == "2001:db8:1:2:ffff::9"


def test_the_per_ip_limit_resets_with_the_window(
    client: Client, settings: Any, clock: time_machine.Traveller
) -> None:
    limit_to(settings, PER_IP="1/m")
    client.get("/health")
    refused = client.get("/health")
    clock.shift(45)

    assert refused.status_code == 429
    assert client.get("/health").status_code == 200


# Failed authentications


@pytest.mark.usefixtures("clock")
def test_after_n_auth_failures_the_address_gets_429_instead_of_401(
    client: Client, settings: Any
) -> None:
    limit_to(settings, AUTH_FAILURES="3/m")

    failures = [trigger(client, "ping", token=WRONG_TOKEN) for _ in range(3)]

    assert statuses(failures) == [401, 401, 401]
    assert_rate_limited(trigger(client, "ping", token=WRONG_TOKEN), retry_after=45)
    assert_rate_limited(anonymous(client), retry_after=45)


@pytest.mark.usefixtures("clock")
def test_a_valid_token_still_runs_from_a_locked_out_address(
    client: Client, settings: Any
) -> None:
    limit_to(settings, AUTH_FAILURES="3/m")
    for _ in range(4):
        trigger(client, "ping", token=WRONG_TOKEN)

    assert trigger(client, "ping").status_code == 200


@pytest.mark.usefixtures("clock")
def test_auth_failures_from_one_address_do_not_limit_another(
    client: Client, settings: Any
) -> None:
    limit_to(settings, AUTH_FAILURES="2/m")
    for _ in range(2):
        trigger(client, "ping", token=WRONG_TOKEN)

    other = Client(REMOTE_ADDR="10.0.0.2")
    assert trigger(other, "ping", token=WRONG_TOKEN).status_code == 401
    assert trigger(client, "ping", token=WRONG_TOKEN).status_code == 429


def test_a_locked_out_address_is_let_in_again_when_the_window_resets(
    client: Client, settings: Any, clock: time_machine.Traveller
) -> None:
    limit_to(settings, AUTH_FAILURES="2/m")
    for _ in range(2):
        trigger(client, "ping", token=WRONG_TOKEN)
    locked_out = trigger(client, "ping", token=WRONG_TOKEN)
    clock.shift(45)

    assert locked_out.status_code == 429
    assert trigger(client, "ping", token=WRONG_TOKEN).status_code == 401


@pytest.mark.usefixtures("clock")
def test_a_missing_token_counts_as_an_auth_failure_at_the_trigger(
    client: Client, settings: Any
) -> None:
    limit_to(settings, AUTH_FAILURES="2/m")

    assert anonymous(client).status_code == 401
    assert anonymous(client).status_code == 401
    assert anonymous(client).status_code == 429


@pytest.mark.usefixtures("clock")
def test_a_wrong_token_at_health_counts_as_an_auth_failure(
    client: Client, settings: Any
) -> None:
    limit_to(settings, AUTH_FAILURES="2/m")
    wrong = {"Authorization": f"Bearer {WRONG_TOKEN}"}

    answers = [client.get("/health", headers=wrong) for _ in range(2)]

    assert [answer.json() for answer in answers] == [{"status": "healthy"}] * 2
    assert anonymous(client).status_code == 429


@pytest.mark.usefixtures("clock")
def test_anonymous_health_checks_are_not_auth_failures(
    client: Client, settings: Any
) -> None:
    limit_to(settings, AUTH_FAILURES="2/m")
    for _ in range(3):
        client.get("/health")

    assert anonymous(client).status_code == 401


# The client's address behind a proxy


@pytest.mark.usefixtures("clock")
def test_address_headers_are_ignored_unless_configured(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    limit_to(settings, PER_IP="1/m")
    anonymous(client, **{"CF-Connecting-IP": "198.51.100.1"})

    response = anonymous(
        client,
        **{"CF-Connecting-IP": "198.51.100.2", "X-Forwarded-For": "198.51.100.3"},
    )

    assert response.status_code == 429
    assert refused_client(json_lines, response) == "127.0.0.1"


def trust(settings: Any, *proxies: str) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TRUSTED_PROXIES": list(proxies)}


@pytest.mark.usefixtures("clock")
def test_the_configured_ip_header_names_the_client(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    limit_to(settings, PER_IP="1/m", IP_HEADER="CF-Connecting-IP")
    trust(settings, "127.0.0.1")

    first = anonymous(client, **{"CF-Connecting-IP": "198.51.100.1"})
    second = anonymous(client, **{"CF-Connecting-IP": "198.51.100.2"})
    again = anonymous(client, **{"CF-Connecting-IP": "198.51.100.1"})

    assert statuses([first, second, again]) == [401, 401, 429]
    assert refused_client(json_lines, second) == "198.51.100.2"


@pytest.mark.usefixtures("clock")
def test_x_forwarded_for_is_read_from_its_last_entry(
    client: Client, settings: Any
) -> None:
    # The proxy appends the address it saw; what comes before is the caller's
    # to write, so a forged first entry buys no fresh limit.
    limit_to(settings, PER_IP="1/m", IP_HEADER="X-Forwarded-For")
    trust(settings, "127.0.0.1")

    first = anonymous(client, **{"X-Forwarded-For": "10.1.1.1, 203.0.113.7"})
    forged = anonymous(client, **{"X-Forwarded-For": "10.2.2.2, 203.0.113.7"})
    other = anonymous(client, **{"X-Forwarded-For": "203.0.113.8"})

    assert statuses([first, forged, other]) == [401, 429, 401]


@pytest.mark.usefixtures("clock")
def test_a_header_from_a_peer_that_is_not_a_trusted_proxy_changes_nothing(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    # The test client calls from 127.0.0.1, which is not among the proxies.
    limit_to(settings, PER_IP="1/m", AUTH_FAILURES=None)
    trust(settings, "10.0.0.0/8")
    anonymous(client, **{"X-Forwarded-For": "198.51.100.1"})

    spoofed = anonymous(client, **{"X-Forwarded-For": "198.51.100.2"})

    assert spoofed.status_code == 429
    assert refused_client(json_lines, spoofed) == "127.0.0.1"


@pytest.mark.parametrize(
    "value", ["", "not-an-address", "203.0.113.7, unknown", "fe80::1%eth0"]
)
@pytest.mark.usefixtures("clock")
def test_an_unusable_ip_header_falls_back_to_remote_addr(
    settings: Any, value: str
) -> None:
    limit_to(settings, IP_HEADER="X-Forwarded-For")
    trust(settings, "10.0.0.9")
    client = Client(REMOTE_ADDR="10.0.0.9")

    response = trigger(client, "ping", headers={"X-Forwarded-For": value})

    assert JobRun.objects.get(id=response.json()["run_id"]).client == "10.0.0.9"


# Defaults, and switching limits off


@pytest.mark.usefixtures("clock")
def test_by_default_the_eleventh_trigger_of_a_job_in_a_minute_gets_429(
    client: Client,
) -> None:
    allowed = [trigger(client, "ping") for _ in range(10)]

    assert statuses(allowed) == [200] * 10
    assert_rate_limited(trigger(client, "ping"), retry_after=45)


@pytest.mark.usefixtures("clock")
def test_by_default_ten_auth_failures_lock_an_address_out(client: Client) -> None:
    failures = [trigger(client, "ping", token=WRONG_TOKEN) for _ in range(10)]

    assert statuses(failures) == [401] * 10
    assert trigger(client, "ping", token=WRONG_TOKEN).status_code == 429


@pytest.mark.usefixtures("clock")
def test_a_limit_of_none_is_no_limit(client: Client, settings: Any) -> None:
    limit_to(settings, PER_JOB=None, PER_IP=None, AUTH_FAILURES=None)
    failures = [trigger(client, "ping", token=WRONG_TOKEN) for _ in range(11)]

    runs = [trigger(client, "ping") for _ in range(11)]

    assert statuses(failures) == [401] * 11
    assert statuses(runs) == [200] * 11


@pytest.mark.usefixtures("clock")
def test_an_unparseable_limit_is_off(client: Client, settings: Any) -> None:
    limit_to(settings, PER_JOB="lots")

    runs = [trigger(client, "ping") for _ in range(11)]

    assert statuses(runs) == [200] * 11


# The cache that counts


@pytest.fixture
def unreachable_cache(settings: Any) -> str:
    """A Redis cache alias whose server does not answer: nothing listens on port 1."""
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        },
    }
    return "down"


@pytest.mark.usefixtures("clock")
def test_requests_pass_when_the_cache_is_unreachable(
    client: Client,
    settings: Any,
    json_lines: JsonLines,
    unreachable_cache: str,
) -> None:
    limit_to(settings, CACHE=unreachable_cache, PER_JOB="1/m", PER_IP="1/m")

    runs = [trigger(client, "ping") for _ in range(2)]

    assert statuses(runs) == [200, 200]
    warnings = [
        line for line in json_lines() if line["message"] == "rate_limit_unavailable"
    ]
    assert warnings
    assert warnings[0]["level"] == "WARNING"
    assert warnings[0]["cache"] == "down"


@pytest.mark.usefixtures("clock")
def test_requests_pass_when_the_cache_alias_does_not_exist(
    client: Client, settings: Any
) -> None:
    limit_to(settings, CACHE="missing", PER_JOB="1/m")

    assert statuses([trigger(client, "ping") for _ in range(2)]) == [200, 200]


@pytest.mark.usefixtures("clock")
def test_the_limit_holds_across_processes_sharing_redis(
    client: Client, settings: Any, redis_url: str
) -> None:
    prefix = f"cronhooks-test-{uuid.uuid4().hex}"

    def app_process(name: str) -> dict[str, Any]:
        # django-redis shares a connection pool between caches with one URL;
        # a client name in the URL gives each "process" its own connections.
        return {
            **settings.CACHES["redis"],
            "LOCATION": f"{redis_url}?client_name={name}",
            "KEY_PREFIX": prefix,
            # Disconnect when Django closes the caches (after each request).
            "OPTIONS": {
                **settings.CACHES["redis"]["OPTIONS"],
                "CLOSE_CONNECTION": True,
            },
        }

    settings.CACHES = {
        **settings.CACHES,
        "redis": app_process("cronhooks-a"),
        "redis-b": app_process("cronhooks-b"),
    }

    def trigger_through(alias: str) -> int:
        limit_to(settings, CACHE=alias, PER_JOB="2/m")
        return trigger(client, "ping").status_code

    try:
        assert (
            get_redis_connection("redis").connection_pool
            is not get_redis_connection("redis-b").connection_pool
        )
        results = [
            trigger_through("redis"),
            trigger_through("redis-b"),
            trigger_through("redis"),
            trigger_through("redis-b"),
        ]
    finally:
        with redis.Redis.from_url(redis_url) as server:
            keys = list(server.scan_iter(f"{prefix}:*"))
            if keys:
                server.delete(*keys)
        for alias in ("redis", "redis-b"):
            get_redis_connection(alias).connection_pool.disconnect()

    assert results == [200, 200, 429, 429]
    assert keys  # the counts were in Redis


# The limit strings


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        ("10/s", Limit(10, 1)),
        ("10/m", Limit(10, 60)),
        ("5/h", Limit(5, 3600)),
        ("1/d", Limit(1, 86400)),
        ("100/5m", Limit(100, 300)),
    ],
)
def test_a_limit_is_a_count_per_period(value: str, limit: Limit) -> None:
    assert parse_limit(value) == limit


@pytest.mark.parametrize(
    "value", ["10", "10/min", "10 / m", "0/m", "10/0m", "-1/m", "ten/m", 10]
)
def test_anything_else_is_not_a_limit(value: object) -> None:
    with pytest.raises(ValueError, match="10/m|None"):
        parse_limit(value)


# System check E014


def with_limits(**limits: object) -> dict[str, Any]:
    return {**CRONHOOKS, "RATE_LIMITS": limits}


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"PER_JOB": "100/5m", "PER_IP": None, "AUTH_FAILURES": "3/h"}, id="limits"
        ),
        pytest.param({"CACHE": "redis"}, id="redis"),
    ],
)
def test_valid_rate_limits_pass_the_checks(limits: dict[str, object]) -> None:
    assert check_error_codes(with_limits(**limits)) == []


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"PER_JOB": "10 per minute"}, id="unparseable"),
        pytest.param({"AUTH_FAILURES": "0/m"}, id="allows-nothing"),
    ],
)
def test_invalid_rate_limits_are_E014(limits: dict[str, object]) -> None:
    assert check_error_codes(with_limits(**limits)) == ["cronhooks.E014"]


@pytest.mark.parametrize(
    ("limits", "check_id"),
    [
        pytest.param({"PER_MINUTE": "10/m"}, "cronhooks.E003", id="unknown-key"),
        pytest.param({"PER_IP": 120}, "cronhooks.E011", id="a-number"),
        pytest.param({"CACHE": None}, "cronhooks.E011", id="cache-not-a-str"),
        pytest.param({"IP_HEADER": None}, "cronhooks.E011", id="header-not-a-str"),
        pytest.param({"CACHE": "nope"}, "cronhooks.E021", id="unknown-cache"),
        pytest.param(
            {"IP_HEADER": "HTTP_X_FORWARDED_FOR"}, "cronhooks.E022", id="meta-key"
        ),
    ],
)
def test_other_rate_limit_mistakes_have_their_own_ids(
    limits: dict[str, object], check_id: str
) -> None:
    # Behind a proxy, so that an IP_HEADER is read at all (else E041).
    proxied = {**with_limits(**limits), "TRUSTED_PROXIES": ["10.0.0.0/8"]}

    assert check_error_codes(proxied) == [check_id]


def test_rate_limits_that_are_not_a_dict_are_E011_only() -> None:
    assert check_error_codes({**CRONHOOKS, "RATE_LIMITS": "10/m"}) == ["cronhooks.E011"]


# How a refusal names its window


@pytest.mark.parametrize(
    ("limit", "window"),
    [("1/d", "1 day"), ("1/2h", "2 hours"), ("1/90s", "90 seconds")],
)
@pytest.mark.usefixtures("clock")
def test_a_refusal_names_its_window_in_the_largest_whole_unit(
    client: Client, settings: Any, limit: str, window: str
) -> None:
    limit_to(settings, PER_JOB=limit)
    trigger(client, "ping")

    refused = trigger(client, "ping")

    assert refused.status_code == 429
    assert refused.json()["error"]["message"].startswith(
        f"More than 1 triggers of job 'ping' in {window}; retry in "
    )


# Addresses that are not plain IPs


@pytest.mark.usefixtures("clock")
def test_an_ipv4_mapped_ipv6_address_is_counted_as_its_ipv4_host(
    settings: Any,
) -> None:
    # A dual-stack server reports IPv4 callers as ::ffff:a.b.c.d.
    limit_to(settings, PER_IP="1/m")
    anonymous(Client(REMOTE_ADDR="203.0.113.5"))

    mapped = anonymous(Client(REMOTE_ADDR="::ffff:203.0.113.5"))
    other = anonymous(Client(REMOTE_ADDR="::ffff:203.0.113.6"))

    assert statuses([mapped, other]) == [429, 401]


@pytest.mark.usefixtures("clock")
def test_a_remote_addr_that_is_not_an_ip_is_still_limited(settings: Any) -> None:
    # Behind a server on a Unix socket, REMOTE_ADDR may be empty.
    limit_to(settings, PER_IP="1/m")
    anonymous(Client(REMOTE_ADDR=""))

    assert anonymous(Client(REMOTE_ADDR="")).status_code == 429
    assert anonymous(Client(REMOTE_ADDR="10.0.0.3")).status_code == 401


@pytest.mark.usefixtures("clock")
def test_auth_failures_are_not_checked_when_the_cache_is_unreachable(
    client: Client,
    settings: Any,
    json_lines: JsonLines,
    unreachable_cache: str,
) -> None:
    limit_to(settings, CACHE=unreachable_cache, PER_IP=None, AUTH_FAILURES="1/m")

    failures = [trigger(client, "ping", token=WRONG_TOKEN) for _ in range(3)]

    # Not locked out, and no 500: the failures are answered as failures.
    assert statuses(failures) == [401, 401, 401]
    warnings = [
        line for line in json_lines() if line["message"] == "rate_limit_unavailable"
    ]
    # Each request: once looking at its address's count, once adding to it.
    assert len(warnings) == 6
    assert {line["cache"] for line in warnings} == {"down"}
