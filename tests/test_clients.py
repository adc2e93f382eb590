"""The client's address behind trusted proxies, and the network allowlist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.test import Client, RequestFactory

from cronhooks.clients import client_address
from cronhooks.models import JobRun
from cronhooks.testing import auth_headers, trigger
from tests.conftest import JsonLines
from tests.settings import CRONHOOKS
from tests.test_checks import check_error_codes


def configure(settings: Any, **values: object) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, **values}


def address_of(remote: str, **headers: str) -> str:
    request = RequestFactory().post("/cron/ping", REMOTE_ADDR=remote, headers=headers)
    return client_address(request)


# The client's address


def test_without_trusted_proxies_the_address_is_the_peer_whatever_the_headers(
    settings: Any,
) -> None:
    configure(settings, RATE_LIMITS={"IP_HEADER": "CF-Connecting-IP"})

    assert (
        address_of(
            "203.0.113.5",
            **{"CF-Connecting-IP": "198.51.100.1", "X-Forwarded-For": "198.51.100.2"},
        )
        == "203.0.113.5"
    )


def test_a_peer_that_is_not_a_trusted_proxy_cannot_name_another_address(
    settings: Any,
) -> None:
    configure(settings, TRUSTED_PROXIES=["10.0.0.0/8"])

    assert address_of("203.0.113.5", **{"X-Forwarded-For": "10.0.0.7"}) == (
        "203.0.113.5"
    )


def test_from_a_trusted_proxy_the_right_most_hop_it_did_not_write_is_the_client(
    settings: Any,
) -> None:
    # The caller wrote 192.0.2.1 itself; the proxy appended what it saw.
    configure(settings, TRUSTED_PROXIES=["10.0.0.1"])

    assert address_of("10.0.0.1", **{"X-Forwarded-For": "192.0.2.1, 203.0.113.9"}) == (
        "203.0.113.9"
    )


def test_hops_written_by_trusted_proxies_are_walked_past(settings: Any) -> None:
    # Client -> CDN (198.51.100.0/24) -> load balancer (10.0.0.0/8) -> app.
    configure(settings, TRUSTED_PROXIES=["10.0.0.0/8", "198.51.100.0/24"])

    assert (
        address_of(
            "10.0.0.2", **{"X-Forwarded-For": "192.0.2.1, 203.0.113.9, 198.51.100.4"}
        )
        == "203.0.113.9"
    )


def test_when_every_hop_is_trusted_the_furthest_one_is_the_client(
    settings: Any,
) -> None:
    configure(settings, TRUSTED_PROXIES=["10.0.0.0/8"])

    assert address_of("10.0.0.2", **{"X-Forwarded-For": "10.9.9.9, 10.0.0.3"}) == (
        "10.9.9.9"
    )


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        pytest.param("", "10.0.0.2", id="missing"),
        pytest.param("unknown", "10.0.0.2", id="garbage"),
        pytest.param("203.0.113.9, unknown", "10.0.0.2", id="garbage-last"),
        pytest.param("unknown, 10.0.0.3", "10.0.0.3", id="garbage-behind-a-proxy"),
        pytest.param("fe80::1%eth0", "10.0.0.2", id="zone"),
    ],
)
def test_a_hop_that_is_not_an_address_ends_the_walk_at_the_last_one_believed(
    settings: Any, forwarded: str, expected: str
) -> None:
    configure(settings, TRUSTED_PROXIES=["10.0.0.0/8"])

    assert address_of("10.0.0.2", **{"X-Forwarded-For": forwarded}) == expected


def test_ip_header_names_the_header_a_trusted_proxy_writes(settings: Any) -> None:
    configure(
        settings,
        TRUSTED_PROXIES=["10.0.0.0/8"],
        RATE_LIMITS={"IP_HEADER": "CF-Connecting-IP"},
    )
    headers = {"CF-Connecting-IP": "2001:db8::7", "X-Forwarded-For": "192.0.2.1"}

    assert address_of("10.0.0.2", **headers) == "2001:db8::7"


def test_an_ipv4_mapped_address_is_its_ipv4_host(settings: Any) -> None:
    configure(settings, TRUSTED_PROXIES=["10.0.0.0/8"])

    assert address_of("::ffff:10.0.0.2", **{"X-Forwarded-For": "::ffff:192.0.2.1"}) == (
        "192.0.2.1"
    )


def test_a_remote_addr_that_is_no_address_is_kept_as_given() -> None:
    assert address_of("") == ""


def test_a_trusted_proxy_entry_that_is_not_a_network_trusts_nobody(
    settings: Any,
) -> None:
    configure(settings, TRUSTED_PROXIES=["10.0.0.1/8", "not-a-network"])

    assert address_of("10.0.0.1", **{"X-Forwarded-For": "192.0.2.1"}) == "10.0.0.1"


# The allowlist


def outsider() -> Client:
    return Client(REMOTE_ADDR="203.0.113.5")


def insider() -> Client:
    return Client(REMOTE_ADDR="192.0.2.10")


@pytest.fixture
def allowlist(settings: Any) -> None:
    configure(settings, ALLOWED_NETWORKS=["192.0.2.0/24", "2001:db8::/32"])


@pytest.mark.django_db
@pytest.mark.usefixtures("allowlist")
def test_a_trigger_from_outside_is_refused_403_whatever_its_token(
    json_lines: JsonLines,
) -> None:
    response = trigger(outsider(), "ping")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "rejected"
    assert body["run_id"] is None
    assert body["error"] == {
        "code": "network_not_allowed",
        "message": "Requests from '203.0.113.5' are not allowed "
        "(CRONHOOKS['ALLOWED_NETWORKS']).",
    }
    # Not a run: anyone can send it. Logged, with the address it came from.
    assert not JobRun.objects.exists()
    lines = json_lines()
    assert [line["client"] for line in lines if line["message"] == "trigger_rejected"]
    [refused] = [line for line in lines if line["message"] == "network_not_allowed"]
    assert refused["client"] == "203.0.113.5"


@pytest.mark.django_db
@pytest.mark.usefixtures("allowlist")
def test_a_caller_inside_the_networks_still_needs_a_token() -> None:
    refused = insider().post("/cron/ping")
    ran = trigger(insider(), "ping")

    assert refused.status_code == 401
    assert ran.status_code == 200
    assert JobRun.objects.get().client == "192.0.2.10"


@pytest.mark.django_db
@pytest.mark.usefixtures("allowlist")
def test_health_and_run_status_refuse_callers_from_outside() -> None:
    run_id = trigger(insider(), "ping").json()["run_id"]

    health = outsider().get("/health", headers=auth_headers())
    status = outsider().get(f"/cron/runs/{run_id}", headers=auth_headers())

    assert [health.status_code, status.status_code] == [403, 403]
    assert health.json()["error"]["code"] == "network_not_allowed"
    assert "checks" not in health.json()
    assert status.json()["error"]["code"] == "network_not_allowed"
    inside = insider().get(f"/cron/runs/{run_id}", headers=auth_headers())
    assert inside.status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("allowlist")
def test_an_ipv6_caller_is_matched_against_ipv6_networks() -> None:
    assert trigger(Client(REMOTE_ADDR="2001:db8::1"), "ping").status_code == 200
    assert trigger(Client(REMOTE_ADDR="2001:db9::1"), "ping").status_code == 403


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_allowlist_sees_the_client_not_the_proxy(
    settings: Any,
) -> None:
    configure(settings, ALLOWED_NETWORKS=["192.0.2.0/24"], TRUSTED_PROXIES=["10.0.0.1"])
    proxy = Client(REMOTE_ADDR="10.0.0.1")

    inside = trigger(proxy, "ping", headers={"X-Forwarded-For": "192.0.2.10"})
    outside = trigger(proxy, "ping", headers={"X-Forwarded-For": "203.0.113.5"})

    assert [inside.status_code, outside.status_code] == [200, 403]
    assert JobRun.objects.get().client == "192.0.2.10"


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_get_it_in(
    settings: Any,
) -> None:
    configure(settings, ALLOWED_NETWORKS=["192.0.2.0/24"], TRUSTED_PROXIES=["10.0.0.1"])

    response = trigger(outsider(), "ping", headers={"X-Forwarded-For": "192.0.2.10"})

    assert response.status_code == 403
    assert not JobRun.objects.exists()


@pytest.mark.django_db
def test_networks_that_are_all_unusable_let_nobody_in(settings: Any) -> None:
    # Fail closed: a typo must not turn the allowlist off.
    configure(settings, ALLOWED_NETWORKS=["192.0.2.10/24"])

    assert trigger(insider(), "ping").status_code == 403


@pytest.mark.django_db
def test_an_empty_allowlist_lets_every_network_in(settings: Any) -> None:
    configure(settings, ALLOWED_NETWORKS=[])

    assert trigger(outsider(), "ping").status_code == 200


# System checks


def test_valid_networks_pass_the_checks() -> None:
    assert (
        check_error_codes(
            {
                **CRONHOOKS,
                "ALLOWED_NETWORKS": ("192.0.2.0/24", "2001:db8::/32", "198.51.100.7"),
                "TRUSTED_PROXIES": ["10.0.0.0/8"],
                "RATE_LIMITS": {"IP_HEADER": "CF-Connecting-IP"},
            }
        )
        == []
    )


@pytest.mark.parametrize("name", ["ALLOWED_NETWORKS", "TRUSTED_PROXIES"])
@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("10.0.0.1/8", id="host-bits"),
        pytest.param("10.0.0.0/33", id="prefix"),
        pytest.param("example.com", id="a-name"),
        pytest.param(10, id="not-a-str"),
    ],
)
def test_an_entry_that_is_not_a_network_is_E040(name: str, entry: object) -> None:
    assert check_error_codes({**CRONHOOKS, name: ["10.0.0.0/8", entry]}) == [
        "cronhooks.E040"
    ]


@pytest.mark.parametrize("name", ["ALLOWED_NETWORKS", "TRUSTED_PROXIES"])
def test_networks_given_as_one_string_are_E011(name: str) -> None:
    assert check_error_codes({**CRONHOOKS, name: "10.0.0.0/8"}) == ["cronhooks.E011"]


def test_an_ip_header_without_trusted_proxies_is_E041() -> None:
    proxied = {**CRONHOOKS, "RATE_LIMITS": {"IP_HEADER": "X-Forwarded-For"}}

    assert check_error_codes(proxied) == ["cronhooks.E041"]


# The example project


def test_the_example_project_reads_its_networks_from_the_environment() -> None:
    code = (
        "import json; from example import settings as s; "
        "print(json.dumps([s.CRONHOOKS[k] for k in "
        "('ALLOWED_NETWORKS', 'TRUSTED_PROXIES')]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([".", "example_project"]),
        "CRONHOOKS_ALLOWED_NETWORKS": "192.0.2.0/24, 2001:db8::/32",
        "CRONHOOKS_TRUSTED_PROXIES": "10.0.0.0/8,",
    }

    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert json.loads(result.stdout) == [
        ["192.0.2.0/24", "2001:db8::/32"],
        ["10.0.0.0/8"],
    ]
