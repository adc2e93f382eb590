"""Bearer authentication: checked first, constant-time, several tokens, never leaked."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.http import HttpRequest
from django.test import Client, RequestFactory

from cronhooks.auth import TokenProblem, authenticate, token_matches, token_problems
from cronhooks.authenticators import (
    Authenticator,
    authenticator_secrets,
    authenticators,
)
from cronhooks.authenticators.bearer import BearerAuthenticator
from cronhooks.authenticators.vercel import VercelCronAuthenticator
from cronhooks.exceptions import AuthenticationFailed
from cronhooks.models import JobRun
from cronhooks.testing import trigger
from elections.models import ImportRun
from tests.conftest import OTHER_TOKEN, JsonLines
from tests.settings import TOKEN

pytestmark = pytest.mark.django_db


def test_missing_header_is_401_with_bearer_challenge(client: Client) -> None:
    response = client.post("/cron/ee-recent")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="cronhooks"'
    assert response.json()["error"]["code"] == "unauthorized"
    assert not ImportRun.objects.exists()


def test_wrong_token_is_401_invalid_token(client: Client) -> None:
    response = trigger(client, "ee-recent", token="x" * 40)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'Bearer realm="cronhooks", error="invalid_token"'
    )
    assert response.json()["error"]["message"] == "Invalid token."
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    "header",
    [f"Basic {TOKEN}", TOKEN, "Bearer", "Bearer ", f"Bearer {TOKEN} extra"],
)
def test_malformed_authorization_header_is_401(client: Client, header: str) -> None:
    response = client.post("/cron/ee-recent", headers={"Authorization": header})

    assert response.status_code == 401
    assert not ImportRun.objects.exists()


def test_bearer_scheme_is_case_insensitive(client: Client) -> None:
    response = client.post("/cron/ping", headers={"Authorization": f"bearer {TOKEN}"})

    assert response.status_code == 200


@pytest.mark.parametrize("name", ["token", "access_token"])
def test_a_token_in_the_query_string_is_never_accepted(
    client: Client, name: str
) -> None:
    response = client.post(f"/cron/ping?{name}={TOKEN}")

    assert response.status_code == 401
    assert "never accepted in the query string" in response.json()["error"]["message"]
    assert not JobRun.objects.filter(status="succeeded").exists()


def test_a_query_string_token_beside_a_valid_header_is_an_unknown_parameter(
    client: Client,
) -> None:
    response = trigger(client, "ping", query={"token": TOKEN})

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"token": "unknown parameter"}
    assert JobRun.objects.get().params == {"token": "[redacted]"}


def test_auth_is_checked_before_the_job_lookup(client: Client) -> None:
    unknown = client.post("/cron/no-such-job")
    known = client.post("/cron/ee-recent")

    assert unknown.status_code == known.status_code == 401
    assert unknown.json()["error"] == known.json()["error"]


def test_several_tokens_are_valid_at_once_for_rotation(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [TOKEN, OTHER_TOKEN]}

    assert trigger(client, "ping", token=TOKEN).status_code == 200
    assert trigger(client, "ping", token=OTHER_TOKEN).status_code == 200

    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [OTHER_TOKEN]}

    assert trigger(client, "ping", token=TOKEN).status_code == 401
    assert trigger(client, "ping", token=OTHER_TOKEN).status_code == 200


def test_no_configured_token_refuses_everything(client: Client, settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": []}

    response = client.post("/cron/ping", headers={"Authorization": "Bearer "})
    assert response.status_code == 401
    response = client.post("/cron/ping", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401


def test_a_prefix_of_a_token_does_not_match(settings: Any) -> None:
    assert token_matches(TOKEN)
    assert not token_matches(TOKEN[:-1])
    assert not token_matches(TOKEN + "x")
    assert not token_matches("")


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return a == b

    monkeypatch.setattr("cronhooks.authenticators.bearer.hmac.compare_digest", spy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cronhooks.conf.Settings.tokens", (TOKEN, OTHER_TOKEN))
        assert token_matches(TOKEN)

    # Every token is compared, even after the first one matched, and as
    # digests of one length, so timing reveals neither which nor how long.
    digests = [hashlib.sha256(t.encode()).digest() for t in (TOKEN, OTHER_TOKEN)]
    assert [b for _, b in compared] == digests
    assert {len(a) for a, _ in compared} == {32}


def test_tokens_never_reach_logs_responses_or_history(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "leaky": {"callable": "tests.testapp.jobs.leak"},
        "echo-word": {"command": "echo_params", "params": {"word": {"type": "str"}}},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    responses = [
        trigger(client, "ping"),
        trigger(client, "boom"),
        trigger(client, "leaky"),  # its exception quotes the token
        trigger(client, "echo-word", query={"word": TOKEN}),
        trigger(client, "ping", query={"token": TOKEN}),
        trigger(client, "ping", token="x" * 40),
        client.post(f"/cron/ping?access_token={TOKEN}"),
        client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"}),
        client.get("/health", headers={"Authorization": "Bearer nope"}),
    ]

    assert responses[2].status_code == 500
    assert responses[3].status_code == 200
    for response in responses:
        assert TOKEN not in response.content.decode()
        assert TOKEN not in str(list(response.items()))
    lines = json_lines()
    assert any(line["message"] == "run_failed" for line in lines)
    assert TOKEN not in json.dumps(lines)
    # Every authenticated trigger attempt; the two without a valid token are
    # logged, not stored.
    assert JobRun.objects.count() == 5
    for run in JobRun.objects.all():
        assert TOKEN not in repr(run.__dict__)


# What makes a configured token unusable: the system checks and /health
# share these rules.


def test_well_formed_tokens_have_no_problems(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [TOKEN, OTHER_TOKEN]}

    assert token_problems() == []


def test_each_unusable_token_is_named_by_its_position(settings: Any) -> None:
    tokens = [TOKEN, "", "short", f"{TOKEN}\n", 42]
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": tokens}

    assert token_problems() == [
        TokenProblem(2, "not_a_string"),
        TokenProblem(3, "too_short", 5),
        TokenProblem(4, "unsendable"),
        TokenProblem(5, "not_a_string"),
    ]


def test_a_single_token_string_is_one_token(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": "short"}

    assert token_problems() == [TokenProblem(1, "too_short", 5)]


def test_tokens_of_the_wrong_type_are_left_to_the_settings_check(
    settings: Any,
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": {"a": TOKEN}}

    assert token_problems() == []


# The authenticators: any one accepting a request authenticates it


class HeaderAuthenticator(Authenticator):
    """Written against the base class alone, as a project's own would be."""

    credential = "'X-Test-Key' header"

    def authenticate(self, request: HttpRequest) -> bool:
        key = request.headers.get("X-Test-Key")
        if key is None:
            return False
        if key != "open-sesame":
            raise AuthenticationFailed("Wrong key.")
        return True


HEADER = {"BACKEND": "tests.test_auth.HeaderAuthenticator"}
BEARER = {"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"}


def with_authenticators(settings: Any, *entries: object) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": list(entries)}


def test_by_default_the_bearer_tokens_of_TOKENS_are_accepted(
    settings: Any,
) -> None:
    assert "AUTHENTICATORS" not in settings.CRONHOOKS
    assert [type(a) for a in authenticators()] == [BearerAuthenticator]


def test_an_authenticator_written_against_the_base_class_alone_works(
    client: Client, settings: Any
) -> None:
    with_authenticators(settings, HEADER)

    accepted = client.post("/cron/ping", headers={"X-Test-Key": "open-sesame"})
    refused = client.post("/cron/ping", headers={"Authorization": f"Bearer {TOKEN}"})

    assert accepted.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Missing 'X-Test-Key' header."


def test_any_authenticator_accepting_is_enough(client: Client, settings: Any) -> None:
    with_authenticators(settings, BEARER, HEADER)

    assert trigger(client, "ping").status_code == 200
    key = {"X-Test-Key": "open-sesame", "Authorization": "Bearer wrong"}
    assert client.post("/cron/ping", headers=key).status_code == 200


def test_when_none_accepts_the_first_invalid_credential_says_why(
    client: Client, settings: Any
) -> None:
    with_authenticators(settings, HEADER, BEARER)

    response = client.post(
        "/cron/ping",
        headers={"X-Test-Key": "nope", "Authorization": "Bearer " + "x" * 40},
    )

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Wrong key."


def test_an_authenticator_that_cannot_be_built_is_left_out_and_logged(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    with_authenticators(settings, {"BACKEND": "no.such.Authenticator"}, BEARER)

    assert trigger(client, "ping").status_code == 200
    [line] = [
        line
        for line in json_lines()
        if line["message"] == "authenticator_misconfigured"
    ]
    assert line["position"] == "0"


@pytest.mark.parametrize(
    "entries",
    [[], [{"BACKEND": "no.such.Authenticator"}]],
    ids=["none", "none-usable"],
)
def test_without_a_usable_authenticator_everything_is_refused(
    client: Client, settings: Any, entries: list[object]
) -> None:
    with_authenticators(settings, *entries)

    response = trigger(client, "ping")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "No authenticator is configured on the server (CRONHOOKS['AUTHENTICATORS'])."
    )


def test_a_misconfigured_authenticators_options_are_still_redacted(
    settings: Any,
) -> None:
    secret = "an-option-that-may-be-a-secret-123"
    broken = {"BACKEND": "no.such.Authenticator", "OPTIONS": {"KEY": secret}}
    with_authenticators(settings, broken, "not a dict")

    assert authenticator_secrets() == [secret]


def test_an_authenticator_never_shows_its_options() -> None:
    vercel = VercelCronAuthenticator(SECRETS=["s" * 20])

    assert repr(vercel) == "<VercelCronAuthenticator>"


def test_the_base_class_refuses_options_it_does_not_take() -> None:
    with pytest.raises(TypeError, match="unknown options: SECRET"):
        HeaderAuthenticator(SECRET="x")


def test_only_a_credential_presented_is_a_failure_to_count(
    rf: RequestFactory, settings: Any
) -> None:
    with pytest.raises(AuthenticationFailed) as missing:
        authenticate(rf.get("/health"))
    with pytest.raises(AuthenticationFailed) as wrong:
        authenticate(rf.get("/health", headers={"Authorization": "Bearer nope"}))

    assert not missing.value.presented
    assert wrong.value.presented
