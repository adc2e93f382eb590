// The Worker's configuration: the vars of wrangler.toml plus the CRONHOOKS_TOKEN
// secret, read once per event into typed settings so a bad value fails loudly
// instead of turning into NaN delays or requests to "undefined/cron/...".
import { SCHEDULES } from "./schedule";

export interface Env {
  BACKEND_BASE: string;
  ENVIRONMENT: string;
  LOG_LEVEL: string;
  RETRY_MAX_ATTEMPTS: string;
  RETRY_INITIAL_DELAY: string;
  REQUEST_TIMEOUT: string;
  POLL_JOBS: string;
  POLL_INTERVAL: string;
  POLL_BUDGET: string;
  CRONHOOKS_TOKEN: string;
}

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Settings {
  /** Without a trailing slash, so `${backendBase}/cron/<job>` is always one slash. */
  backendBase: string;
  environment: string;
  logLevel: LogLevel;
  maxAttempts: number;
  initialDelayMs: number;
  timeoutMs: number;
  /**
   * The job names (a target's path before any "?") whose background runs are
   * followed to their final status; "*" follows every job's.
   */
  pollJobs: ReadonlySet<string>;
  pollIntervalMs: number;
  /** How long polling may go on after a 202, within the invocation's wall-clock limit. */
  pollBudgetMs: number;
  token: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function readSettings(env: Env): Settings {
  const backendBase = (env.BACKEND_BASE ?? "").replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]/.test(backendBase)) {
    throw new ConfigError("BACKEND_BASE must be an http(s) URL");
  }
  if (!(env.ENVIRONMENT in SCHEDULES)) {
    throw new ConfigError(
      `ENVIRONMENT must be one of ${Object.keys(SCHEDULES).join(", ")}`,
    );
  }
  if (!env.CRONHOOKS_TOKEN) {
    // Every call would be refused with 401: say why once, up front.
    throw new ConfigError(
      "CRONHOOKS_TOKEN is not set (wrangler secret put CRONHOOKS_TOKEN)",
    );
  }
  return {
    backendBase,
    environment: env.ENVIRONMENT,
    // An unknown level is not worth failing a cron tick for.
    logLevel: (LOG_LEVELS as readonly string[]).includes(env.LOG_LEVEL)
      ? (env.LOG_LEVEL as LogLevel)
      : "info",
    maxAttempts: positiveInteger(env, "RETRY_MAX_ATTEMPTS", 1),
    initialDelayMs: positiveInteger(env, "RETRY_INITIAL_DELAY", 0),
    timeoutMs: positiveInteger(env, "REQUEST_TIMEOUT", 1),
    pollJobs: pollJobs(env.POLL_JOBS ?? ""),
    // Polling faster than this would only load the backend's status endpoint.
    pollIntervalMs: positiveInteger(env, "POLL_INTERVAL", 100),
    pollBudgetMs: positiveInteger(env, "POLL_BUDGET", 100),
    token: env.CRONHOOKS_TOKEN,
  };
}

/** "parties-import, slow" -> {"parties-import", "slow"}; "" follows no job. */
function pollJobs(raw: string): ReadonlySet<string> {
  const names = raw
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  const target = names.find((name) => name.includes("?"));
  if (target !== undefined) {
    // It would silently never match: jobs are matched by name alone.
    throw new ConfigError(
      `POLL_JOBS lists job names without a query string, not ${JSON.stringify(target)}`,
    );
  }
  return new Set(names);
}

function positiveInteger(
  env: Env,
  name:
    | "RETRY_MAX_ATTEMPTS"
    | "RETRY_INITIAL_DELAY"
    | "REQUEST_TIMEOUT"
    | "POLL_INTERVAL"
    | "POLL_BUDGET",
  minimum: number,
): number {
  const raw = env[name];
  const value = Number(raw);
  if (!/^\d+$/.test(raw ?? "") || value < minimum) {
    throw new ConfigError(`${name} must be an integer >= ${minimum}`);
  }
  return value;
}
