"""Google Cloud Scheduler: a shell script of gcloud commands, one job each, or
the same jobs as Terraform resources (``cloud-scheduler-terraform``).

Each job is created, or updated when it exists (``create`` and ``update``
take the same flags used here), so the script is run again after every
schedule change. Cloud Scheduler authenticates with a Google-signed OIDC
token (``--oidc-service-account-email``) rather than a stored bearer token:
cronhooks verifies it with its Google OIDC authenticator, whose audience is
the base URL given here. The time zone is set on every job.
"""

from __future__ import annotations

import json
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


def hcl_string(value: str) -> str:
    """``value`` as an HCL quoted string: JSON's escapes, and no template.

    ``${`` and ``%{`` would start an interpolation or a directive; neither
    occurs in a cron or a percent-encoded URL, but one would change the value.
    """
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


class CloudSchedulerTerraform(ScheduleFormat):
    """The same jobs as ``google_cloud_scheduler_job`` resources.

    Terraform deletes the job of a resource removed from the file, which the
    gcloud script cannot do.
    """

    name = "cloud-scheduler-terraform"

    def render(self, schedule: Schedule) -> str:
        header = "\n".join(comment_lines(schedule))
        resources = []
        for call in schedule.calls:
            name = job_id(schedule.environment, call.job)
            resources.append(
                f"""resource "google_cloud_scheduler_job" {hcl_string(name)} {{
  name      = {hcl_string(name)}
  region    = var.cronhooks_region
  schedule  = {hcl_string(call.cron)}
  time_zone = {hcl_string(TIME_ZONE)}

  retry_config {{
    retry_count = 0
  }}

  http_target {{
    http_method = "POST"
    uri         = {hcl_string(call.url)}

    oidc_token {{
      service_account_email = var.cronhooks_service_account_email
      audience              = {hcl_string(schedule.base_url)}
    }}
  }}
}}
"""
            )
        body = "\n".join(resources)
        return f"""{header}
#
# cronhooks verifies each call's OIDC token with its Google OIDC
# authenticator: its audience is {schedule.base_url}, and the service account
# below must be one it allows. No retries: a retried 500 would run a failed
# job again; give the job retries in cronhooks instead.

variable "cronhooks_region" {{
  type        = string
  description = "The Cloud Scheduler region, e.g. europe-west2."
}}

variable "cronhooks_service_account_email" {{
  type        = string
  description = "The service account whose OIDC token cronhooks accepts."
}}

{body}"""
