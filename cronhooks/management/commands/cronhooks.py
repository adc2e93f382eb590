"""``manage.py cronhooks list | run | status | pause | resume | wrangler |
schedule export | cleanup | prune``."""

from __future__ import annotations

import getpass
import json
import uuid
from argparse import SUPPRESS, ArgumentParser, ArgumentTypeError
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.core import checks
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    SystemCheckError,
)
from django.db import DatabaseError
from django.utils import timezone

from cronhooks import idempotency
from cronhooks.checks import (
    check_authenticator_secrets,
    check_metrics_tokens,
    check_tokens,
)
from cronhooks.conf import conf
from cronhooks.exceptions import (
    InvalidIdempotencyKey,
    InvalidJobDefinition,
    TasksUnavailable,
)
from cronhooks.health import job_report
from cronhooks.idempotency import idempotency_key
from cronhooks.jobs import all_jobs, definitions
from cronhooks.locks import LockUnavailable
from cronhooks.log import correlation_id
from cronhooks.models import JobRun, UsedSignature
from cronhooks.pauses import open_pauses, pause_job, resume_job
from cronhooks.runs import Trigger, run_job
from cronhooks.runs.outcome import run_json
from cronhooks.runs.slots import abandon_orphans
from cronhooks.runs.tasks import task_backend
from cronhooks.schedules.export import (
    FORMATS,
    ExportError,
    build_schedule,
    drift,
    get_format,
    write,
)
from cronhooks.schedules.wrangler import (
    ENVIRONMENTS,
    WranglerConfigError,
    WranglerProject,
    init_project,
    schedules,
)
from cronhooks.status import job_statuses


def _when(value: JobRun | datetime | None) -> str:
    if isinstance(value, JobRun):
        value = value.finished_at or value.started_at
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _who(given: str | None) -> str:
    """Who pauses or resumes: as given, else the user running the command."""
    if given is not None:
        return given
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # pragma: no cover  (no user name at all)
        return "cli"


def name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, value


def environments(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_schedule_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        default="wrangler",
        type=Path,
        help="The Worker project's directory (default: wrangler).",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="Change nothing; exit 1 if the Worker is out of sync with the job "
        "registry, or an environment's BACKEND_BASE is missing, a placeholder or "
        "not https.",
    )
    parser.add_argument(
        "--environments",
        default=",".join(ENVIRONMENTS),
        help="Comma-separated Worker environments (default: %(default)s).",
    )
    parser.add_argument(
        "--allow-placeholders",
        action="store_true",
        help="With --check, accept a placeholder BACKEND_BASE (example.com, .test "
        "...), as in a template; a non-https one still fails.",
    )


class Command(BaseCommand):
    help = "List, run and prune cronhooks jobs."
    # Run by handle(), without the token checks (see check_all_but_tokens).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Show every job, its schedule and last run.")
        run = actions.add_parser(
            "run", help="Run a job through the same path as an HTTP trigger."
        )
        run.add_argument("job")
        run.add_argument(
            "--param",
            "-p",
            action="append",
            default=[],
            type=name_value,
            metavar="NAME=VALUE",
            help="A job parameter; repeat for several.",
        )
        run.add_argument(
            "--correlation-id", help="Correlate with another system's logs."
        )
        run.add_argument(
            "--idempotency-key",
            default=None,
            help="Run at most once for this key, as the Idempotency-Key header.",
        )
        run.add_argument(
            "--json", action="store_true", help="Print the result as JSON."
        )
        run.add_argument(
            "--background",
            action="store_true",
            help="Enqueue it for a task worker and print the run id, as a trigger "
            "with 'Prefer: respond-async' would.",
        )
        wrangler = actions.add_parser(
            "wrangler",
            help="Write the Cloudflare Worker's crons from the job registry, or "
            "--check them; `wrangler init DIR` creates the Worker project.",
        )
        add_schedule_arguments(wrangler)
        wrangler_actions = wrangler.add_subparsers(dest="wrangler_action")
        init = wrangler_actions.add_parser(
            "init",
            help="Write a ready Worker project, with this deployment's schedules, "
            "into DIR.",
        )
        init.add_argument("directory", type=Path, metavar="DIR")
        init.add_argument(
            "--force", action="store_true", help="Overwrite files that exist."
        )
        add_schedule_arguments(
            actions.add_parser(
                "worker", help="Deprecated alias of `wrangler` (removed in 0.2)."
            )
        )
        schedule = actions.add_parser(
            "schedule", help="Schedules for other schedulers, from the job registry."
        )
        schedule_actions = schedule.add_subparsers(
            dest="schedule_action", required=True
        )
        export = schedule_actions.add_parser(
            "export",
            help="Write one environment's schedule for GitHub Actions, Vercel, "
            "Cloud Scheduler, QStash or crontab, or --check a file written before.",
        )
        export.add_argument("--format", required=True, choices=list(FORMATS))
        export.add_argument(
            "--environment",
            default=None,
            help="Whose schedules (default: CRONHOOKS['ENVIRONMENT']).",
        )
        export.add_argument(
            "--base-url",
            default=None,
            help="The app's https URL the scheduler calls (default: "
            "CRONHOOKS['BASE_URL']); vercel needs none.",
        )
        target = export.add_mutually_exclusive_group()
        target.add_argument(
            "--output",
            type=Path,
            metavar="FILE",
            help="Write it into FILE (vercel: only the crons of a vercel.json) "
            "instead of printing it.",
        )
        target.add_argument(
            "--check",
            type=Path,
            metavar="FILE",
            help="Change nothing; exit 1, showing the difference, if FILE has "
            "drifted from the job registry.",
        )
        status = actions.add_parser(
            "status",
            help="Show each job against its schedule (exit 2 when a critical job "
            "is overdue, stalled or failing), or one run.",
        )
        status.add_argument(
            "run_id", nargs="?", help="A run's id: show that run instead."
        )
        status.add_argument(
            "--json", action="store_true", help="Print the report as JSON."
        )
        pause = actions.add_parser(
            "pause",
            help="Refuse the job's triggers (503 job_paused) until it is resumed; "
            "every process sees it at once.",
        )
        pause.add_argument("job")
        pause.add_argument("--reason", default="", help="Why, for whoever looks next.")
        resume = actions.add_parser("resume", help="Resume a paused job.")
        resume.add_argument("job")
        for command in (pause, resume):
            command.add_argument(
                "--by",
                default=None,
                help="Who does it, as recorded (default: the user running this).",
            )
        actions.add_parser(
            "cleanup",
            help="Mark runs left 'running' whose lock is no longer held as abandoned.",
        )
        prune = actions.add_parser("prune", help="Delete old run records.")
        prune.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days (default: CRONHOOKS['RETENTION_DAYS']).",
        )
        prune.add_argument(
            "--batch-size",
            type=int,
            default=10_000,
            help="Delete this many records per statement (default: 10000).",
        )
        # Before or after the subcommand (`cronhooks list --skip-checks`). A
        # subcommand's SUPPRESS default leaves what the main parser read.
        parser.add_argument(
            "--skip-checks", action="store_true", help="Skip system checks."
        )
        for subcommand in [*actions.choices.values(), init, export]:
            subcommand.add_argument(
                "--skip-checks",
                action="store_true",
                default=SUPPRESS,
                help="Skip system checks.",
            )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if not options["skip_checks"]:
            self.check_all_but_tokens()
        if action == "worker":
            self.stderr.write(
                "`cronhooks worker` is deprecated and will be removed in 0.2: use "
                "`cronhooks wrangler`, which does the same."
            )
        if action == "list":
            self.list_jobs()
        elif action == "run":
            self.run_one(options["job"], options)
        elif action == "wrangler" and options["wrangler_action"] == "init":
            if options["check"]:
                raise CommandError(
                    "init writes a new project; --check it afterwards with "
                    f"`cronhooks wrangler --dir {options['directory']} --check`."
                )
            self.wrangler_init(options["directory"], options["force"])
        elif action in ("wrangler", "worker"):
            self.wrangler(
                options["dir"],
                options["check"],
                environments(options["environments"]),
                allow_placeholders=options["allow_placeholders"],
            )
        elif action == "schedule":
            self.export_schedule(options)
        elif action == "status" and options["run_id"]:
            self.show_run(options["run_id"], options["json"])
        elif action == "status":
            self.status(options["json"])
        elif action == "pause":
            self.pause(options["job"], options["reason"], options["by"])
        elif action == "resume":
            self.resume(options["job"], options["by"])
        elif action == "cleanup":
            self.cleanup()
        else:
            self.prune(options["days"], options["batch_size"])

    def status(self, as_json: bool) -> None:
        statuses = job_statuses()
        if as_json:
            self.stdout.write(json.dumps(job_report(statuses), indent=2))
        else:
            rows = [
                ("JOB", "STATE", "CRITICAL", "LAST SUCCESS", "LAST FAILURE", "NEXT RUN")
            ]
            for name, status in statuses.items():
                rows.append(
                    (
                        name,
                        status.state,
                        "yes" if status.job.critical else "no",
                        _when(status.last_success),
                        _when(status.last_failure),
                        _when(status.next_run),
                    )
                )
            self.write_table(rows)
        problems = [name for name, s in statuses.items() if s.critical_problem]
        if problems:
            raise CommandError(
                f"Critical job(s) overdue or failing: {', '.join(problems)}.",
                returncode=2,
            )

    def show_run(self, run_id: str, as_json: bool) -> None:
        try:
            run = JobRun.objects.filter(id=uuid.UUID(run_id)).first()
        except ValueError:
            run = None
        if run is None:
            raise CommandError(f"There is no run with id {run_id!r}.", returncode=2)
        body = run_json(run)
        if as_json:
            self.stdout.write(json.dumps(body, indent=2))
            return
        for name, value in body.items():
            if name in ("output", "params", "error") or value in (None, ""):
                continue
            self.stdout.write(f"{name + ':':<18}{value}")
        if body.get("params"):
            self.stdout.write(f"{'params:':<18}{json.dumps(body['params'])}")
        if "error" in body:
            self.stdout.write(f"{'error:':<18}{body['error']['code']}: {run.error}")
        if run.output:
            self.stdout.write("output:")
            self.stdout.write(run.output.rstrip("\n"))

    def write_table(self, rows: Sequence[tuple[str, ...]]) -> None:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [
                cell.ljust(width) for cell, width in zip(row, widths, strict=False)
            ]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())

    def list_jobs(self) -> None:
        jobs = definitions()
        pauses: dict[str, Any] = {}
        try:
            latest: dict[str, JobRun] | None = JobRun.objects.last_runs(jobs)
            pauses = open_pauses(jobs)
        except DatabaseError as error:
            # The registry is in settings: show it where the run history is
            # not there yet (a new checkout, a CI job without a database).
            latest = None
            self.stderr.write(
                self.style.WARNING(
                    f"The run history cannot be read ({error}); is the database "
                    "migrated? LAST RUN is unknown."
                )
            )
        rows = [("JOB", "SCHEDULE", "ENABLED", "LAST RUN", "RUNS", "DESCRIPTION")]
        for name, job in jobs.items():
            if isinstance(job, InvalidJobDefinition):
                rows.append((name, "-", "-", "-", "-", f"MISCONFIGURED: {job}"))
                continue
            last = None if latest is None else latest.get(name)
            last_text = (
                f"{last.status} {last.started_at:%Y-%m-%d %H:%M:%S}"
                if last
                else "unknown"
                if latest is None
                else "never"
            )
            enabled = "no" if not job.active else "paused" if name in pauses else "yes"
            rows.append(
                (
                    name,
                    job.schedule or "manual",
                    enabled,
                    last_text,
                    job.target,
                    job.description,
                )
            )
        self.write_table(rows)

    def run_one(self, job: str, options: dict[str, Any]) -> None:
        params = dict(options["param"])
        if len(params) != len(options["param"]):
            raise CommandError("Each --param may be given once.")
        try:
            key = idempotency_key(options["idempotency_key"])
        except InvalidIdempotencyKey as error:
            raise CommandError(error.message, returncode=2) from None
        if options["background"]:
            try:
                task_backend()
            except TasksUnavailable as error:
                raise CommandError(error.message, returncode=2) from None
        outcome = run_job(
            Trigger(
                job=job,
                source=JobRun.Source.CLI,
                correlation_id=correlation_id(options["correlation_id"]),
                params=params,
                idempotency_key=key,
                background=options["background"],
            )
        )
        run = outcome.run
        if options["json"]:
            self.stdout.write(json.dumps(outcome.as_dict()))
        elif run.output:
            self.stdout.write(run.output.rstrip("\n"))
        if outcome.rejection is not None:
            details = "".join(
                f"\n  {name}: {reason}"
                for name, reason in outcome.rejection.details.items()
            )
            raise CommandError(f"{outcome.rejection.message}{details}", returncode=2)
        if outcome.accepted:
            if not options["json"]:
                self.stdout.write(
                    f"{job} is {run.status} (run {run.run_id}, correlation "
                    f"{run.correlation_id}); follow it with `cronhooks status "
                    f"{run.run_id}`."
                )
            return
        if not outcome.succeeded:
            raise CommandError(f"Job {job!r} {run.status}: {run.error}", returncode=1)
        if outcome.replay is not None and not options["json"]:
            self.stdout.write(
                f"{job} already ran for this idempotency key (run {run.run_id}); "
                "nothing was run again."
            )
        elif not options["json"]:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{job} succeeded in {run.duration_ms} ms (run {run.run_id}, "
                    f"correlation {run.correlation_id})"
                )
            )

    def wrangler(
        self,
        directory: Path,
        check: bool,
        environments: list[str],
        *,
        allow_placeholders: bool,
    ) -> None:
        table = schedules(all_jobs().values(), environments)
        project = WranglerProject(directory)
        try:
            if check:
                self.check_wrangler(project, table, environments, allow_placeholders)
                return
            changed = project.write(table)
            backends = project.backend_problems(
                environments, allow_placeholders=allow_placeholders
            )
        except WranglerConfigError as error:
            raise CommandError(str(error)) from None
        for path in changed:
            self.stdout.write(f"Wrote {path}")
        if not changed:
            self.stdout.write(f"{directory} was already in sync.")
        for environment, problem in backends.items():
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {environment}: {problem} (in {project.toml})."
                )
            )

    def check_wrangler(
        self,
        project: WranglerProject,
        table: dict[str, dict[str, list[str]]],
        environments: list[str],
        allow_placeholders: bool,
    ) -> None:
        backends = project.backend_problems(
            environments, allow_placeholders=allow_placeholders
        )
        problems = [
            f"{environment}: {problem}" for environment, problem in backends.items()
        ]
        stale = project.stale(table)
        if stale:
            names = ", ".join(str(path) for path in stale)
            problems.insert(
                0,
                f"Out of sync with the job registry: {names}. Run `manage.py "
                f"cronhooks wrangler --dir {project.directory}`.",
            )
        if problems:
            raise CommandError("\n".join(problems), returncode=1)
        self.stdout.write(f"{project.directory} is in sync with the job registry.")

    def wrangler_init(self, directory: Path, force: bool) -> None:
        table = schedules(all_jobs().values(), ENVIRONMENTS)
        try:
            written = init_project(directory, table, force=force)
            unsafe = WranglerProject(directory).backend_problems(ENVIRONMENTS)
        except WranglerConfigError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(
                f"Cannot write the Worker project into {directory}: {error}"
            ) from None
        for path in written:
            self.stdout.write(f"Wrote {path}")
        crons = sum(len(crons) for crons in table.values())
        tables = " and ".join(f"[env.{environment}.vars]" for environment in unsafe)
        self.stdout.write(
            self.style.SUCCESS(
                f"\nA Worker project with this deployment's schedules ({crons} "
                f"cron(s) in {', '.join(ENVIRONMENTS)}) is in {directory}."
            )
        )
        self.stdout.write(
            f"""Next steps:
  1. Set BACKEND_BASE, your Django app's https URL, in {tables or "each [env.*.vars]"}
     of {directory / "wrangler.toml"} (placeholders now).
  2. cd {directory} && npm ci && npm test
  3. npx wrangler secret put CRONHOOKS_TOKEN --env production
     (one of CRONHOOKS["TOKENS"]; again with --env staging for staging)
  4. npm run deploy
When a schedule changes, run `manage.py cronhooks wrangler --dir {directory}`;
in CI, `manage.py cronhooks wrangler --dir {directory} --check` fails when the
Worker is out of sync or a BACKEND_BASE is unsafe."""
        )

    def export_schedule(self, options: dict[str, Any]) -> None:
        environment = options["environment"] or conf.environment
        base_url = conf.base_url if options["base_url"] is None else options["base_url"]
        check, output = options["check"], options["output"]
        try:
            schedule_format = get_format(options["format"])
            schedule = build_schedule(
                schedule_format, all_jobs().values(), environment, base_url
            )
            for skipped in schedule.skipped:
                self.stderr.write(f"Skipped {skipped.job} ({skipped.reason}).")
            if check is not None:
                difference = drift(schedule_format, schedule, check)
            elif output is not None:
                written = write(schedule_format, schedule, output)
        except ExportError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            # A directory, a missing parent's permissions...: not a traceback.
            raise CommandError(f"Cannot use {check or output}: {error}") from None
        if check is not None and difference:
            raise CommandError(
                f"{check} has drifted from the job registry; write it again with "
                f"`{schedule.command} --output {check}`:\n{difference}",
                returncode=1,
            )
        if check is not None:
            self.stdout.write(f"{check} is in sync with the job registry.")
        elif output is None:
            self.stdout.write(schedule_format.render(schedule), ending="")
        elif written:
            self.stdout.write(f"Wrote {output}")
        else:
            self.stdout.write(f"{output} was already in sync.")

    def check_all_but_tokens(self) -> None:
        """Django's system checks, but for the bearer tokens and other
        authenticators' secrets.

        No subcommand serves a request, so none needs a token: `list`,
        `wrangler --check` and `init` must work on a machine (a CI runner, a
        new checkout) where the secret is not set.
        """
        token_issues = (
            check_tokens() + check_authenticator_secrets() + check_metrics_tokens()
        )
        issues = [
            issue
            for issue in checks.run_checks()
            if issue not in token_issues and not issue.is_silenced()
        ]
        serious = [issue for issue in issues if issue.is_serious()]
        lines = sorted(
            self.style.ERROR(str(issue))
            if issue.is_serious()
            else self.style.WARNING(str(issue))
            for issue in issues
        )
        if serious:
            raise SystemCheckError(
                "System check identified some issues:\n\n" + "\n".join(lines)
            )
        if lines:
            self.stderr.write(
                "System check identified some issues:\n\n" + "\n".join(lines)
            )

    def pause(self, job: str, reason: str, by: str | None) -> None:
        if job not in definitions():
            raise CommandError(f"There is no job {job!r}.", returncode=2)
        pause, opened = pause_job(job, by=_who(by), reason=reason)
        since = f"{pause.paused_at:%Y-%m-%d %H:%M:%S %Z}"
        if not opened:
            self.stdout.write(
                f"{job} was already paused (by {pause.paused_by or 'unknown'} "
                f"since {since}); nothing changed."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{job} is paused: its triggers are refused until `manage.py "
                f"cronhooks resume {job}`."
            )
        )

    def resume(self, job: str, by: str | None) -> None:
        # A job no longer declared may still have a pause left open: resumable.
        pause = resume_job(job, by=_who(by))
        if pause is None:
            if job not in definitions():
                raise CommandError(f"There is no job {job!r}.", returncode=2)
            self.stdout.write(f"{job} was not paused; nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{job} is resumed (it was paused since "
                f"{pause.paused_at:%Y-%m-%d %H:%M:%S %Z})."
            )
        )

    def cleanup(self) -> None:
        try:
            abandoned = abandon_orphans()
        except LockUnavailable as error:
            raise CommandError(f"{error} Nothing was changed.") from None
        self.stdout.write(f"Marked {len(abandoned)} run(s) as abandoned.")
        for run in abandoned:
            self.stdout.write(f"  {run.job} {run.id} started {run.started_at:%c}")

    def prune(self, days: int | None, batch_size: int) -> None:
        keep = conf.retention_days if days is None else days
        if keep < 0:
            raise CommandError("--days must be 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        cutoff = timezone.now() - timedelta(days=keep)
        # Each job's newest run of each outcome stays, however old: it is
        # what /health measures overdue from, and what a replay answers with.
        newest = list(
            JobRun.objects.executed()
            .latest_per_job(by_status=True)
            .values_list("id", flat=True)
        )
        deleted = (
            JobRun.objects.filter(started_at__lt=cutoff)
            .exclude(status=JobRun.Status.RUNNING)
            .exclude(id__in=newest)
            .delete_in_batches(batch_size)
        )
        self.stdout.write(
            f"Deleted {deleted} run record(s) started before "
            f"{cutoff:%Y-%m-%d %H:%M:%S %Z}."
        )
        self.stdout.write(f"Deleted {idempotency.prune()} expired idempotency key(s).")
        expired = UsedSignature.objects.filter(expires_at__lte=timezone.now())
        deleted, _ = expired.delete()
        self.stdout.write(f"Deleted {deleted} expired request signature(s).")
