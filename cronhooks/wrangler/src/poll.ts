// Following a background run (the backend's 202) to its final status, so the
// Worker's own log says how a job ended, not only that it was queued.
//
// The status URL is built here from BACKEND_BASE and a run_id that must be a
// UUID, never taken from the answer's status_url or Location: a compromised or
// misconfigured backend could point those anywhere, and the token goes along.
import {
  fetchWithTimeout,
  isRetryable,
  jsonBody,
  jsonField,
  stringField,
  type JobResult,
} from "./http";
import type { Logger } from "./log";
import type { Settings } from "./settings";
import { backendCredentials } from "./signing";

export const FINAL_STATUSES: ReadonlySet<string> = new Set([
  "succeeded",
  "failed",
  "timed_out",
  "abandoned",
  "rejected",
]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A job's name is its target without the query string: "mop-recent?delta=25" is "mop-recent". */
export function jobName(target: string): string {
  return target.split("?", 1)[0] ?? target;
}

export function isPolled(
  target: string,
  settings: Pick<Settings, "pollJobs">,
): boolean {
  return settings.pollJobs.has("*") || settings.pollJobs.has(jobName(target));
}

/**
 * For a polled job the backend accepted, GETs BACKEND_BASE/cron/runs/<run_id>
 * every POLL_INTERVAL until the run's status is final (outcome ok when it
 * succeeded, failed otherwise) or POLL_BUDGET is spent. Network errors,
 * timeouts, 429 and 5xx are asked again at the next interval; any other answer
 * (401, 403, 404...) will not change by asking again, and ends polling. A
 * result that is not a polled job's 202 is given back as it is.
 */
export async function followRun(
  result: JobResult,
  settings: Settings,
  logger: Logger,
): Promise<JobResult> {
  if (result.outcome !== "accepted" || !isPolled(result.job, settings)) {
    return result;
  }
  const fields = {
    correlation_id: result.correlation_id,
    job: result.job,
    run_id: result.run_id,
  };
  if (result.run_id === null || !UUID.test(result.run_id)) {
    logger.log("warn", {
      event: "poll_skipped",
      ...fields,
      reason: "run_id is not a UUID",
    });
    return result;
  }
  const url = `${settings.backendBase}/cron/runs/${result.run_id}`;
  const headers = {
    // The same id as the trigger call: the backend's lines for both tie together.
    "X-Correlation-ID": result.correlation_id,
    Accept: "application/json",
    "User-Agent": "cronhooks-worker",
  };
  const deadline = Date.now() + settings.pollBudgetMs;
  let lastStatus = result.backend_status;
  for (let poll = 1; ; poll++) {
    // The last wait is cut short so that one poll lands on the deadline.
    await sleep(Math.min(settings.pollIntervalMs, deadline - Date.now()));
    const credentials = await backendCredentials(settings, "GET", url);
    const fetched = await fetchWithTimeout(
      url,
      { headers: { ...headers, ...credentials } },
      settings.timeoutMs,
    );
    const status = "error" in fetched ? fetched.error : fetched.response.status;
    const run = "error" in fetched ? null : jsonBody(fetched.body);
    const runStatus = status === 200 ? stringField(run, "status") : null;
    logger.log(status === 200 ? "debug" : "warn", {
      event: "poll",
      ...fields,
      poll,
      status,
      backend_status: runStatus,
      ...("error" in fetched ? { error: fetched.message } : {}),
    });

    if (runStatus !== null && FINAL_STATUSES.has(runStatus)) {
      const errorCode = stringField(jsonField(run, "error"), "code");
      const duration = jsonField(run, "duration_ms");
      logger.log(runStatus === "succeeded" ? "info" : "error", {
        event: "run_finished",
        ...fields,
        status: runStatus,
        // The backend's measure of the run itself, not of the polling.
        duration_ms: typeof duration === "number" ? duration : null,
        ...(errorCode === null ? {} : { error_code: errorCode }),
      });
      return {
        ...result,
        outcome: runStatus === "succeeded" ? "ok" : "failed",
        final_status: runStatus,
      };
    }
    if (status !== 200 && !isRetryable(status)) {
      logger.log("error", {
        event: "poll_failed",
        ...fields,
        status: lastStatus,
        http_status: status,
      });
      return result;
    }
    lastStatus = runStatus ?? lastStatus;
    if (Date.now() >= deadline) {
      logger.log("warn", {
        event: "poll_gave_up",
        ...fields,
        status: lastStatus,
        polls: poll,
        budget_ms: settings.pollBudgetMs,
      });
      return result;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
