"""`cronhooks schedule export`: which jobs each scheduler calls, at which URL,
and `--check FILE` failing, with the difference, once a file has drifted."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from cronhooks.jobs import all_jobs
from cronhooks.schedules.export import (
    FORMATS,
    Call,
    ExportError,
    build_schedule,
    get_format,
)

REGISTRY: dict[str, Any] = {
    "ee-recent": {
        "command": "uk_create_elections_from_every_election",
        "args": ["--recently-updated"],
        "schedule": {"production": "*/5 * * * *", "staging": "*/15 * * * *"},
    },
    "mop-recent": {
        "command": "uk_create_elections_from_every_election",
        "params": {
            "delta": {
                "type": "int",
                "default": 25,
                "option": "recently_updated_delta",
            }
        },
        "schedule": "33 23 * * *",
    },
    "paused": {"command": "echo_params", "schedule": "1 1 * * *", "enabled": False},
    "by-hand": {"command": "echo_params"},
}
BASE = "https://app.elections.dev"


@pytest.fixture
def registry(settings: Any) -> dict[str, Any]:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": REGISTRY, "BASE_URL": ""}
    return REGISTRY


def export(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("cronhooks", "schedule", "export", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def schedule_of(name: str, environment: str = "production", base: str = BASE) -> Any:
    return build_schedule(
        get_format(name), all_jobs().values(), environment, base_url=base
    )


@pytest.mark.usefixtures("registry")
def test_each_scheduled_job_is_called_at_its_path_with_its_defaults() -> None:
    schedule = schedule_of("crontab")

    assert schedule.calls == (
        Call(
            "ee-recent",
            "*/5 * * * *",
            "/cron/ee-recent",
            f"{BASE}/cron/ee-recent",
        ),
        Call(
            "mop-recent",
            "33 23 * * *",
            "/cron/mop-recent?delta=25",
            f"{BASE}/cron/mop-recent?delta=25",
            {"delta": 25},
        ),
    )


@pytest.mark.usefixtures("registry")
def test_disabled_and_manual_jobs_are_skipped_with_their_reason() -> None:
    skipped = {skip.job: skip.reason for skip in schedule_of("crontab").skipped}

    assert skipped == {
        "paused": "disabled",
        "by-hand": "manual: no schedule in production",
    }


@pytest.mark.usefixtures("registry")
def test_an_environment_gets_its_own_crons() -> None:
    schedule = schedule_of("crontab", environment="staging")

    assert [(call.job, call.cron) for call in schedule.calls] == [
        ("ee-recent", "*/15 * * * *"),
        ("mop-recent", "33 23 * * *"),
    ]


@pytest.mark.usefixtures("registry")
@override_settings(ROOT_URLCONF="tests.urls_with_prefix")
def test_paths_follow_the_prefix_the_urls_are_included_under() -> None:
    paths = [call.path for call in schedule_of("vercel").calls]

    assert paths == ["/ops/cron/ee-recent", "/ops/cron/mop-recent?delta=25"]


@pytest.mark.usefixtures("registry")
@override_settings(ROOT_URLCONF="tests.urls_without_cronhooks")
def test_without_cronhooks_urls_there_is_nothing_to_call() -> None:
    with pytest.raises(ExportError, match="not included in ROOT_URLCONF"):
        schedule_of("vercel")


@pytest.mark.usefixtures("registry")
def test_the_base_url_loses_its_trailing_slash() -> None:
    assert schedule_of("crontab", base=f"{BASE}/").calls[0].url == (
        f"{BASE}/cron/ee-recent"
    )


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize(
    ("base", "reason"),
    [
        ("", "No base URL: pass --base-url"),
        ("https://example.com", "is a placeholder: example.com"),
        ("https://app.example", "is a placeholder"),
        ("http://app.elections.dev", "would cross the network unencrypted"),
        ("https://user:pw@app.elections.dev", "must not hold credentials"),
        ("https://app.elections.dev/?x=1", "must not have a query string"),
        ("ftp://app.elections.dev", "is not an http(s) URL"),
    ],
)
def test_base_urls_the_worker_would_refuse_are_refused(base: str, reason: str) -> None:
    with pytest.raises(
        ExportError, match=reason.replace("(", r"\(").replace(")", r"\)")
    ):
        schedule_of("crontab", base=base)


@pytest.mark.usefixtures("registry")
def test_plain_http_to_this_machine_is_accepted() -> None:
    assert schedule_of("crontab", base="http://127.0.0.1:8000").base_url == (
        "http://127.0.0.1:8000"
    )


@pytest.mark.usefixtures("registry")
def test_vercel_needs_no_base_url_as_it_calls_its_own_deployment() -> None:
    schedule = schedule_of("vercel", base="")

    assert schedule.base_url == ""
    assert [call.url for call in schedule.calls] == ["", ""]


def test_an_unknown_format_names_the_formats() -> None:
    with pytest.raises(ExportError, match="no export format 'cron'.*github-actions"):
        get_format("cron")


def test_every_format_is_importable_and_named_as_listed() -> None:
    assert {name: get_format(name).name for name in FORMATS} == {
        name: name for name in FORMATS
    }


@pytest.mark.parametrize("cron", ["0 0 L * *", "0 0 * * 5L", "0 0 * * MON#2"])
@pytest.mark.parametrize("name", list(FORMATS))
def test_cloudflare_only_cron_syntax_is_refused_naming_the_job(
    name: str, cron: str, settings: Any
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {"month-end": {"command": "echo_params", "schedule": cron}},
    }

    with pytest.raises(ExportError) as error:
        schedule_of(name)

    assert f"Job 'month-end' runs on {cron!r}, which uses L, W, # or ?" in str(
        error.value
    )


def test_names_are_refused_only_where_they_are_not_understood(settings: Any) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {"weekly": {"command": "echo_params", "schedule": "0 6 * JAN MON"}},
    }

    with pytest.raises(ExportError, match="uses month or weekday names"):
        schedule_of("vercel")
    assert schedule_of("crontab").calls[0].cron == "0 6 * JAN MON"


def test_a_registry_with_nothing_scheduled_is_an_error(settings: Any) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {"by-hand": {"command": "echo_params"}},
    }

    with pytest.raises(ExportError, match="No enabled job has a schedule in 'prod"):
        schedule_of("crontab")


# The command.


@pytest.mark.usefixtures("registry")
def test_export_prints_the_file_and_reports_skipped_jobs_on_stderr() -> None:
    out, err = export("--format", "crontab", "--base-url", BASE)

    assert out == get_format("crontab").render(schedule_of("crontab"))
    assert err.splitlines() == [
        "Skipped paused (disabled).",
        "Skipped by-hand (manual: no schedule in production).",
    ]


def test_the_base_url_defaults_to_the_setting(registry: Any, settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "BASE_URL": "https://other.dev"}

    out, _ = export("--format", "crontab")

    assert "https://other.dev/cron/ee-recent" in out
    assert (
        "https://other.dev/cron/ee-recent"
        not in export("--format", "crontab", "--base-url", BASE)[0]
    )


def test_the_environment_defaults_to_the_setting(registry: Any, settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENVIRONMENT": "staging"}

    out, _ = export("--format", "vercel")

    assert '"*/15 * * * *"' in out
    assert (
        '"*/5 * * * *"'
        in export("--format", "vercel", "--environment", "production")[0]
    )


@pytest.mark.usefixtures("registry")
def test_an_export_error_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="No base URL"):
        export("--format", "crontab")


@pytest.mark.usefixtures("registry")
def test_export_needs_no_token(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": []}

    out, _ = export("--format", "vercel")

    assert "/cron/ee-recent" in out


@pytest.mark.usefixtures("registry")
def test_output_writes_the_file_once(tmp_path: Path) -> None:
    target = tmp_path / "ci" / "cronhooks.crontab"

    first, _ = export(
        "--format", "crontab", "--base-url", BASE, "--output", str(target)
    )
    second, _ = export(
        "--format", "crontab", "--base-url", BASE, "--output", str(target)
    )

    assert first == f"Wrote {target}\n"
    assert second == f"{target} was already in sync.\n"
    assert target.read_text() == export("--format", "crontab", "--base-url", BASE)[0]


@pytest.mark.usefixtures("registry")
def test_check_passes_on_fresh_output(tmp_path: Path) -> None:
    target = tmp_path / "cronhooks.yml"
    export("--format", "github-actions", "--base-url", BASE, "--output", str(target))

    out, _ = export(
        "--format", "github-actions", "--base-url", BASE, "--check", str(target)
    )

    assert out == f"{target} is in sync with the job registry.\n"


def test_check_fails_with_the_difference_once_the_registry_moves(
    registry: Any, settings: Any, tmp_path: Path
) -> None:
    target = tmp_path / "cronhooks.crontab"
    export("--format", "crontab", "--base-url", BASE, "--output", str(target))
    written = target.read_text()
    moved = {
        **registry,
        "mop-recent": {**registry["mop-recent"], "schedule": "0 4 * * *"},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": moved}

    with pytest.raises(CommandError) as error:
        export("--format", "crontab", "--base-url", BASE, "--check", str(target))

    message = str(error.value)
    assert error.value.returncode == 1
    assert f"{target} has drifted from the job registry" in message
    assert f"--output {target}" in message
    assert "\n-33 23 * * * " in message
    assert "\n+0 4 * * * " in message
    assert target.read_text() == written


@pytest.mark.usefixtures("registry")
def test_check_fails_on_a_hand_edited_file(tmp_path: Path) -> None:
    target = tmp_path / "cronhooks.sh"
    export("--format", "qstash", "--base-url", BASE, "--output", str(target))
    target.write_text(
        target.read_text().replace("Upstash-Retries: 0", "Upstash-Retries: 5")
    )

    with pytest.raises(
        CommandError,
        match="(?s)-  -H 'Upstash-Retries: 5'.*\\+  -H 'Upstash-Retries: 0'",
    ):
        export("--format", "qstash", "--base-url", BASE, "--check", str(target))


@pytest.mark.usefixtures("registry")
def test_check_of_a_missing_file_says_how_to_write_it(tmp_path: Path) -> None:
    target = tmp_path / "vercel.json"

    with pytest.raises(CommandError, match="does not exist. Write it with `manage.py"):
        export("--format", "vercel", "--check", str(target))


@pytest.mark.usefixtures("registry")
def test_output_and_check_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not allowed with argument"):
        export("--format", "vercel", "--output", "a", "--check", "b")


def test_every_format_starts_with_how_to_write_it_again(registry: Any) -> None:
    for name in FORMATS:
        if name == "vercel":
            continue  # JSON: no comments
        text = get_format(name).render(schedule_of(name))
        assert (
            f"# Generated by manage.py cronhooks schedule export --format {name} "
            f"--environment production --base-url {BASE}\n"
        ) in text
        assert "# Skipped paused (disabled).\n" in text
        assert "# Skipped by-hand (manual: no schedule in production).\n" in text


def test_the_readme_examples_are_lines_of_real_exports() -> None:
    """Each example in the README's "Other schedulers" is an excerpt of what
    the command writes for this suite's registry, which has the README's
    ee-recent and mop-recent."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Other schedulers\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.DOTALL)
    formats = {
        "yaml": "github-actions",
        "json": "vercel",
        "hcl": "cloud-scheduler-terraform",
        "": "crontab",
    }
    checked = []
    for language, block in blocks:
        name = formats.get(language)
        if "upsert " in block:
            name = "cloud-scheduler"
        elif "qstash.upstash.io" in block:
            name = "qstash"
        if name is None:
            continue  # the commands that write them
        real = get_format(name).render(schedule_of(name)).splitlines()
        missing = [line for line in block.splitlines() if line not in real]
        assert missing == [], f"{name}: {missing}"
        checked.append(name)

    assert sorted(checked) == sorted(FORMATS)


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("option", ["--output", "--check"])
def test_a_file_that_cannot_be_used_is_a_clear_error(
    tmp_path: Path, option: str
) -> None:
    with pytest.raises(CommandError, match=f"Cannot use {tmp_path}: .*Is a directory"):
        export("--format", "crontab", "--base-url", BASE, option, str(tmp_path))
