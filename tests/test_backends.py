"""cronhooks.backends: every pluggable backend is loaded one way, built once
per process, and rebuilt when the settings change."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest
from django.test import Client

from cronhooks.alerts.base import (
    Alert,
    AlertBackend,
    InvalidAlertBackend,
    alert_backends,
)
from cronhooks.alerts.slack import SlackAlertBackend
from cronhooks.checks import check_alerts, check_locks
from cronhooks.jobs import get_job
from cronhooks.locks import (
    InvalidLockBackend,
    get_backend,
    load_backend,
    lock_backends,
)
from cronhooks.locks.database import DatabaseLockBackend
from cronhooks.testing import trigger
from tests.conftest import JsonLines

REDIS_BACKEND = "cronhooks.locks.redis.RedisLockBackend"
SLACK = {
    "BACKEND": "cronhooks.alerts.slack.SlackAlertBackend",
    "OPTIONS": {"WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x"},
}
OTHER_WEBHOOK = "https://hooks.slack.com/services/T0/B0/other"


class ClosingLockBackend(DatabaseLockBackend):
    """The database lease, telling when it is closed."""

    closed: ClassVar[list[ClosingLockBackend]] = []

    def close(self) -> None:
        self.closed.append(self)
        super().close()


@pytest.fixture
def without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a project installed without the [redis] extra."""
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "cronhooks.locks.redis", raising=False)


def use_locks(settings: Any, backend: str, options: dict[str, Any]) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {"BACKEND": backend, "OPTIONS": options},
    }


def use_alerts(settings: Any, alerts: dict[str, Any], **jobs: Any) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "ALERTS": alerts,
        "JOBS": {**settings.CRONHOOKS["JOBS"], **jobs},
    }


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    # Alerts are sent from threads that outlive the run's answer.
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# Locks


def test_the_lock_backend_is_built_once_per_process(settings: Any) -> None:
    use_locks(settings, f"{__name__}.ClosingLockBackend", {})

    assert get_backend() is get_backend()


def test_a_settings_change_closes_the_lock_backend_and_builds_a_new_one(
    settings: Any,
) -> None:
    use_locks(settings, f"{__name__}.ClosingLockBackend", {})
    first = get_backend()

    use_locks(settings, f"{__name__}.ClosingLockBackend", {"DATABASE": "default"})

    assert first in ClosingLockBackend.closed
    assert get_backend() is not first


def test_a_caches_change_rebuilds_the_lock_backend(settings: Any) -> None:
    # A Redis backend may use a CACHES entry's connection.
    first = get_backend()

    settings.CACHES = {**settings.CACHES}

    assert get_backend() is not first


def test_a_lock_backend_that_cannot_be_built_is_not_kept(settings: Any) -> None:
    use_locks(settings, "cronhooks.locks.nope.Backend", {})

    for _ in range(2):
        with pytest.raises(InvalidLockBackend, match="Could not import lock backend"):
            get_backend()


def test_locks_is_one_entry_known_as_default() -> None:
    assert lock_backends.aliases() == ["default"]


def test_load_builds_a_new_backend_every_time() -> None:
    path = "cronhooks.locks.database.DatabaseLockBackend"

    assert load_backend(path, {}) is not load_backend(path, {})


# Alerts


class CountingAlertBackend(AlertBackend):
    """An alert channel that counts how often it is built and what it sends."""

    built: ClassVar[list[CountingAlertBackend]] = []

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias, options)
        self.sent: list[Alert] = []
        self.built.append(self)

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


@pytest.mark.django_db
def test_an_alert_channel_is_built_once_not_on_every_run(
    settings: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CountingAlertBackend, "built", [])
    use_alerts(
        settings,
        {"counting": {"BACKEND": f"{__name__}.CountingAlertBackend"}},
        failing={"command": "boom", "alerts": {}},
    )

    for _ in range(3):
        trigger(client, "failing")
    wait_until(lambda: sum(len(c.sent) for c in CountingAlertBackend.built) >= 3)

    assert len(CountingAlertBackend.built) == 1


def test_overrides_without_a_scope_are_refused(settings: Any) -> None:
    use_alerts(settings, {"slack": SLACK})

    with pytest.raises(ValueError, match="scope"):
        alert_backends.get("slack", {"WEBHOOK_URL": OTHER_WEBHOOK})


def test_a_job_with_its_own_options_gets_its_own_channel(settings: Any) -> None:
    overrides = {"slack": {"WEBHOOK_URL": OTHER_WEBHOOK}}
    use_alerts(
        settings, {"slack": SLACK}, own={"command": "check", "alerts": overrides}
    )
    job = get_job("own")

    channel = alert_backends.get("slack", overrides["slack"], scope=job.name)

    assert isinstance(channel, SlackAlertBackend)
    assert channel.webhook_url == OTHER_WEBHOOK
    assert alert_backends.get("slack").options == SLACK["OPTIONS"]
    assert alert_backends.get("slack", overrides["slack"], scope=job.name) is channel


def test_a_settings_change_rebuilds_the_alert_channels(settings: Any) -> None:
    use_alerts(settings, {"slack": SLACK})
    first = alert_backends.get("slack")

    options = {"WEBHOOK_URL": OTHER_WEBHOOK}
    use_alerts(settings, {"slack": {**SLACK, "OPTIONS": options}})

    rebuilt = alert_backends.get("slack")
    assert rebuilt is not first
    assert isinstance(rebuilt, SlackAlertBackend)
    assert rebuilt.webhook_url == OTHER_WEBHOOK


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"BACKEND": "cronhooks.alerts.nope.Backend"}, "Could not import alert"),
        ({"BACKEND": "cronhooks.jobs.Job"}, "is not a subclass of AlertBackend"),
        ({"OPTIONS": {}}, "must be a dict with a 'BACKEND'"),
    ],
)
def test_a_bad_alert_entry_is_a_clear_configuration_error(
    settings: Any, entry: dict[str, Any], message: str
) -> None:
    use_alerts(settings, {"odd": entry})

    with pytest.raises(InvalidAlertBackend, match=message):
        alert_backends.get("odd")


# A backend whose extra is not installed


def test_a_redis_lock_backend_without_the_extra_is_a_check_error_naming_it(
    settings: Any, without_redis: None
) -> None:
    use_locks(settings, REDIS_BACKEND, {"URL": "redis://127.0.0.1:6379/0"})

    [error] = check_locks()

    assert error.id == "cronhooks.E009"
    assert 'pip install "django-cronhooks[redis]"' in error.msg
    assert "needs the 'redis' package" in error.msg


@pytest.mark.django_db
def test_a_redis_lock_backend_without_the_extra_is_a_503_logged_naming_it(
    client: Client, settings: Any, without_redis: None, json_lines: JsonLines
) -> None:
    use_locks(settings, REDIS_BACKEND, {"URL": "redis://127.0.0.1:6379/0"})

    response = trigger(client, "ping")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "lock_unavailable"
    [line] = [
        line for line in json_lines() if line["message"] == "lock_backend_misconfigured"
    ]
    assert 'pip install "django-cronhooks[redis]"' in line["error"]


def test_a_missing_module_that_no_extra_provides_is_named_as_it_is(
    settings: Any,
) -> None:
    use_alerts(settings, {"odd": {"BACKEND": "nowhere_to_be_found.Backend"}})

    [error] = check_alerts()

    assert "Could not import alert backend 'nowhere_to_be_found.Backend'" in error.msg
    assert "pip install" not in error.msg


class SlowAlertBackend(CountingAlertBackend):
    """Takes a while to build (a client that connects first), and says when
    it has started."""

    building: ClassVar[threading.Event] = threading.Event()

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        self.building.set()
        time.sleep(0.3)
        super().__init__(alias, options)


def test_threads_asking_at_once_get_one_backend_built_once(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CountingAlertBackend, "built", [])
    monkeypatch.setattr(SlowAlertBackend, "building", threading.Event())
    use_alerts(settings, {"slow": {"BACKEND": f"{__name__}.SlowAlertBackend"}})
    got: list[AlertBackend] = []

    first = threading.Thread(target=lambda: got.append(alert_backends.get("slow")))
    first.start()
    # The second asks while the first is still building it.
    assert SlowAlertBackend.building.wait(timeout=5)
    second = threading.Thread(target=lambda: got.append(alert_backends.get("slow")))
    second.start()
    first.join(timeout=5)
    second.join(timeout=5)

    assert len(got) == 2
    assert got[0] is got[1]
    assert len(CountingAlertBackend.built) == 1
