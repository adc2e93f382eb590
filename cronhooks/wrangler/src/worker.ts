// The cronhooks Worker. A Cron Trigger fires the jobs scheduled for its cron in
// this environment; over HTTP, GET /health reports on the Worker and the backend
// and POST /trigger runs jobs by hand for a caller holding the token.
//
// A Worker has no start-up to fail at: the settings are read on every event, and
// one it cannot run with (a placeholder BACKEND_BASE, say) stops the event
// before any request, so the token never leaves.
import { isAuthorized } from "./auth";
import { corsHeaders, preflight } from "./cors";
import { callJob, fetchWithTimeout, jsonBody, type Call } from "./http";
import { allJobs, jobsForCron, type Schedules } from "./jobs";
import { jsonLogger } from "./log";
import { followRun } from "./poll";
import { SCHEDULES } from "./schedule";
import { backendCredentials } from "./signing";
import {
  ConfigError,
  readAllowedOrigin,
  readSettings,
  type Env,
  type Settings,
} from "./settings";

export type { Env };

/** Health checks answer monitors that give up after a few seconds themselves. */
const HEALTH_TIMEOUT_MS = 5_000;

/**
 * Calls every target at once; one slow job must not hold the others back.
 * With follow, a polled job's background run is followed to its end (poll.ts).
 */
export function runJobs(
  targets: readonly string[],
  scheduledTime: number,
  settings: Settings,
  { follow }: { follow: boolean },
): Promise<Call[]> {
  const logger = jsonLogger(settings.logLevel);
  return Promise.all(
    targets.map(async (target) => {
      const call = await callJob(target, scheduledTime, settings, logger);
      if (!follow) return call;
      return {
        ...call,
        result: await followRun(call.result, settings, logger),
      };
    }),
  );
}

/**
 * The Worker's handlers over one schedule table. The deployed Worker is the
 * default export, over the generated src/schedule.ts; the tests build theirs
 * over a fixture schedule, so the Worker's behaviour is tested whatever jobs a
 * project's registry holds.
 */
export function createWorker(schedules: Schedules) {
  return {
    async scheduled(controller, env, ctx) {
      let settings: Settings;
      try {
        settings = readSettings(env);
      } catch (error) {
        // Thrown on: the invocation then shows as failed in the dashboard's
        // cron events and `wrangler tail`, next to this line saying why.
        if (error instanceof ConfigError) logMisconfigured(error);
        throw error;
      }
      const targets = jobsForCron(
        schedules,
        settings.environment,
        controller.cron,
      );
      if (targets === undefined) {
        // wrangler.toml and schedule.ts disagree: regenerate both from Django.
        jsonLogger(settings.logLevel).log("error", {
          event: "unknown_cron",
          cron: controller.cron,
          environment: settings.environment,
        });
        return;
      }
      // waitUntil keeps the invocation alive while polling, up to the platform's
      // wall-clock limit for a Cron Trigger: POLL_BUDGET must stay within it.
      ctx.waitUntil(
        runJobs(targets, controller.scheduledTime, settings, { follow: true }),
      );
    },

    async fetch(request, env) {
      const url = new URL(request.url);
      const route = ROUTES[url.pathname];
      if (route === undefined) return json(404, { status: "not_found" });
      // Worked out apart from the other settings, so that the allowed page can
      // read a misconfigured answer too.
      const allowedOrigin = allowedOriginOf(env);
      const cors = corsHeaders(request, allowedOrigin);
      const methods = [route.method, "OPTIONS"];
      if (request.method === "OPTIONS") {
        return preflight(request, allowedOrigin, methods);
      }
      if (request.method !== route.method) {
        return json(
          405,
          { status: "method_not_allowed" },
          { Allow: methods.join(", "), ...cors },
        );
      }
      let settings: Settings;
      try {
        settings = readSettings(env);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        logMisconfigured(error);
        // 503: this Worker cannot serve until it is fixed, and a monitor of
        // /health should say so. The message names the setting, never a secret.
        return json(
          503,
          {
            status: "misconfigured",
            setting: error.setting,
            error: error.message,
          },
          cors,
        );
      }
      const response = await route.handle(request, url, settings, schedules);
      for (const [name, value] of Object.entries(cors)) {
        response.headers.set(name, value);
      }
      return response;
    },
  } satisfies ExportedHandler<Env>;
}

export default createWorker(SCHEDULES);

function logMisconfigured(error: ConfigError): void {
  jsonLogger("error").log("error", {
    event: "misconfigured",
    setting: error.setting,
    error: error.message,
  });
}

/** ALLOWED_ORIGIN, or null when it is unset or itself the misconfiguration. */
function allowedOriginOf(env: Env): string | null {
  try {
    return readAllowedOrigin(env.ALLOWED_ORIGIN);
  } catch (error) {
    if (error instanceof ConfigError) return null;
    throw error;
  }
}

interface Route {
  method: "GET" | "POST";
  handle(
    request: Request,
    url: URL,
    settings: Settings,
    schedules: Schedules,
  ): Promise<Response>;
}

const ROUTES: Partial<Record<string, Route>> = {
  "/health": { method: "GET", handle: health },
  "/trigger": { method: "POST", handle: trigger },
};

/**
 * The backend's /health answer alongside the Worker's own. The token goes to
 * the backend (which then answers in detail) only for a caller that presented
 * it: this endpoint is public and must not hand out what the token unlocks.
 */
async function health(
  request: Request,
  _url: URL,
  settings: Settings,
): Promise<Response> {
  const url = `${settings.backendBase}/health`;
  let headers: Record<string, string> = { Accept: "application/json" };
  if (await isAuthorized(request, settings.token)) {
    headers = {
      ...headers,
      ...(await backendCredentials(settings, "GET", url)),
    };
  }
  const fetched = await fetchWithTimeout(
    url,
    { headers },
    Math.min(settings.timeoutMs, HEALTH_TIMEOUT_MS),
  );
  const backend =
    "error" in fetched
      ? { reachable: false, error: fetched.error }
      : {
          reachable: true,
          status_code: fetched.response.status,
          body: jsonBody(fetched.body),
        };
  const healthy = "status_code" in backend && backend.status_code === 200;
  return json(healthy ? 200 : 503, {
    status: healthy ? "healthy" : "unhealthy",
    worker: { status: "ok", environment: settings.environment },
    backend,
  });
}

/**
 * Runs one job (`?job=<target>` or `{"job": "<target>"}`) or every job of this
 * environment (`{"all": true}`, or no job named), and answers with each result:
 * 200 when none failed, 502 when the backend failed at least one. A named job
 * the backend accepted to run in the background gets the backend's 202 body.
 *
 * Background runs are not followed here: the caller holds the token and the
 * status URL, and a fetch event's waitUntil ends long before POLL_BUDGET would.
 */
async function trigger(
  request: Request,
  url: URL,
  settings: Settings,
  schedules: Schedules,
): Promise<Response> {
  if (!(await isAuthorized(request, settings.token))) {
    jsonLogger(settings.logLevel).log("warn", { event: "unauthorized" });
    return json(
      401,
      { status: "unauthorized" },
      { "WWW-Authenticate": 'Bearer realm="cronhooks-worker"' },
    );
  }
  const known = allJobs(schedules, settings.environment);
  const requested = await requestedJob(request, url);
  if (requested instanceof Response) return requested;
  if (requested !== null && !known.includes(requested)) {
    return json(404, { status: "unknown_job", job: requested, known });
  }
  const targets = requested === null ? known : [requested];
  // A manual run is a new run, not a retry of a tick: it gets a fresh key.
  const calls = await runJobs(targets, Date.now(), settings, { follow: false });
  const [only] = calls;
  if (requested !== null && only?.result.outcome === "accepted") {
    return new Response(only.body, {
      status: 202,
      headers: { "Content-Type": "application/json" },
    });
  }
  const results = calls.map((call) => call.result);
  const failed = results.some((result) => result.outcome === "failed");
  return json(failed ? 502 : 200, {
    status: failed ? "failed" : "ok",
    environment: settings.environment,
    results,
  });
}

/** The job target asked for, null for "all", or a 400 answer. */
async function requestedJob(
  request: Request,
  url: URL,
): Promise<string | null | Response> {
  const fromQuery = url.searchParams.get("job");
  if (fromQuery !== null) return fromQuery;
  const text = await request.text();
  if (text.trim() === "") return null;
  const body = jsonBody(text);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return json(400, {
      status: "bad_request",
      error: 'body must be a JSON object: {"job": "<target>"} or {"all": true}',
    });
  }
  if (!("job" in body) || body.job === undefined) return null;
  if (typeof body.job !== "string") {
    return json(400, { status: "bad_request", error: "job must be a string" });
  }
  return body.job;
}

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}
