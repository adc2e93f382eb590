"""Google Cloud Scheduler: a shell script of gcloud commands, one job each.

Each job is created, or updated when it exists (``create`` and ``update``
take the same flags used here), so the script is run again after every
schedule change. Cloud Scheduler authenticates with a Google-signed OIDC
token (``--oidc-service-account-email``) rather than a stored bearer token:
cronhooks verifies it with its Google OIDC authenticator, whose audience is
the base URL given here. The time zone is set on every job.
"""

from __future__ import annotations

import shlex

from cronhooks.schedules.export import (
    TIME_ZONE,
    Schedule,
    ScheduleFormat,
    comment_lines,
)

PREFIX = "cronhooks"


def job_id(environment: str, job: str) -> str:
    """Unique in a project and location, across environments: letters,
    digits, hyphens and underscores, as Cloud Scheduler requires."""
    return f"{PREFIX}-{environment}-{job}"


class CloudScheduler(ScheduleFormat):
    name = "cloud-scheduler"

    def render(self, schedule: Schedule) -> str:
        header = "\n".join(comment_lines(schedule))
        commands = []
        for call in schedule.calls:
            flags = [
                f"--schedule={shlex.quote(call.cron)}",
                f"--time-zone={TIME_ZONE}",
                f"--uri={shlex.quote(call.url)}",
                "--http-method=POST",
                '--oidc-service-account-email="$CRONHOOKS_SERVICE_ACCOUNT"',
                f"--oidc-token-audience={shlex.quote(schedule.base_url)}",
                # Cloud Scheduler's default; said so that a rerun resets an
                # edit made in the console. A retried 500 would run a failed
                # job again: retry inside cronhooks instead (a job's retries).
                "--max-retry-attempts=0",
            ]
            lines = [f"upsert {job_id(schedule.environment, call.job)}", *flags]
            commands.append(" \\\n  ".join(lines))
        body = "\n\n".join(commands)
        return f"""#!/bin/sh
{header}
#
# Run it with gcloud signed in to the project; CRONHOOKS_LOCATION is the
# Cloud Scheduler region (europe-west2...), CRONHOOKS_SERVICE_ACCOUNT the
# service account whose OIDC token cronhooks accepts. Jobs removed from the
# registry are not deleted here: `gcloud scheduler jobs delete ID`.
set -eu
: "${{CRONHOOKS_LOCATION:?set it to the Cloud Scheduler region}}"
: "${{CRONHOOKS_SERVICE_ACCOUNT:?set it to the service account email}}"

upsert() {{
  id=$1
  shift
  if gcloud scheduler jobs describe "$id" --location="$CRONHOOKS_LOCATION" \\
    >/dev/null 2>&1; then
    gcloud scheduler jobs update http "$id" --location="$CRONHOOKS_LOCATION" "$@"
  else
    gcloud scheduler jobs create http "$id" --location="$CRONHOOKS_LOCATION" "$@"
  fi
}}

{body}
"""
