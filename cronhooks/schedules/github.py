"""A GitHub Actions workflow that calls each job on its schedule.

``on.schedule`` has one cron per distinct expression (GitHub reads them in
UTC, as the registry writes them). When one fires, ``github.event.schedule``
is that expression: a matrix built from it runs one job per endpoint, so each
call has its own log and status and one failure does not hide the others.
The token is the repository secret ``CRONHOOKS_TOKEN``, passed to curl through
the environment, never written into the workflow.
"""

from __future__ import annotations

import json

from cronhooks.schedules.export import (
    ExportError,
    Schedule,
    ScheduleFormat,
    comment_lines,
)

# curl retries a timeout, a refused connection, 408, 429 and 5xx, honouring
# Retry-After. Each retry carries the first attempt's Idempotency-Key, so a
# job that failed (500) is answered its failure again, not run again.
CURL = (
    "curl --fail-with-body --silent --show-error --retry 3 --retry-connrefused "
    "--retry-max-time 300"
)


# GitHub refuses a workflow whose expression is longer, or whose matrix
# makes more jobs (its documented limits).
MAX_EXPRESSION = 21_000
MAX_MATRIX_JOBS = 256


def _expression_literal(value: object) -> str:
    """``value`` as JSON in a GitHub expression's single-quoted string.

    No ' can occur (paths are percent-encoded, crons have none), but one
    would end the string: it is escaped as JSON does not.
    """
    return json.dumps(value).replace("'", "\\u0027")


class GitHubActions(ScheduleFormat):
    name = "github-actions"

    def render(self, schedule: Schedule) -> str:
        crons = schedule.by_cron()
        calls = {
            cron: [{"job": call.job, "path": call.path} for call in cron_calls]
            for cron, cron_calls in crons.items()
        }
        # One entry per line, folded back into one string by YAML: the
        # single-quoted scalar doubles the expression's own quotes.
        entries = ",\n".join(
            f"            {_expression_literal(cron)}: {_expression_literal(targets)}"
            for cron, targets in calls.items()
        )
        crowded = {
            cron: len(targets)
            for cron, targets in calls.items()
            if len(targets) > MAX_MATRIX_JOBS
        }
        if crowded or len(entries) > MAX_EXPRESSION:
            found = [f"{cron!r} calls {count} jobs" for cron, count in crowded.items()]
            if len(entries) > MAX_EXPRESSION:
                found.append(f"the cron -> endpoints map is {len(entries)} characters")
            raise ExportError(
                f"GitHub Actions refuses a matrix of over {MAX_MATRIX_JOBS} jobs and "
                f"an expression of over {MAX_EXPRESSION} characters: "
                f"{'; '.join(found)}."
            )
        schedules = "\n".join(f"    - cron: {json.dumps(cron)}" for cron in crons)
        header = "\n".join(comment_lines(schedule))
        return f"""{header}
#
# Add one of CRONHOOKS["TOKENS"] as the repository secret CRONHOOKS_TOKEN.
# GitHub may start a scheduled run late, and disables the schedules of a
# public repository without activity for 60 days.
name: cronhooks
"on":
  schedule:
{schedules}
permissions: {{}}
env:
  CRONHOOKS_BASE_URL: {json.dumps(schedule.base_url)}
jobs:
  trigger:
    name: ${{{{ matrix.call.job }}}}
    runs-on: ubuntu-latest
    timeout-minutes: 15
    strategy:
      fail-fast: false
      matrix:
        call: '${{{{ fromJSON(''{{
{entries}
          }}'')[github.event.schedule] }}}}'
    steps:
      - name: POST ${{{{ matrix.call.path }}}}
        env:
          CRONHOOKS_TOKEN: ${{{{ secrets.CRONHOOKS_TOKEN }}}}
          CRONHOOKS_PATH: ${{{{ matrix.call.path }}}}
          IDEMPOTENCY_KEY: github-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
        run: >-
          {CURL} -w '\\n' -X POST
          -H "Authorization: Bearer $CRONHOOKS_TOKEN"
          -H "Idempotency-Key: $IDEMPOTENCY_KEY"
          "$CRONHOOKS_BASE_URL$CRONHOOKS_PATH"
"""
