// The Worker's configuration: the vars of wrangler.toml plus the CRONHOOKS_TOKEN
// secret (and the optional SIGNING_SECRET), read once per event into typed settings so a bad value fails loudly
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
  ALLOWED_ORIGIN: string;
  CRONHOOKS_TOKEN: string;
  /** Optional: signs every request to the backend instead of sending the token. */
  SIGNING_SECRET?: string;
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
  /** The one origin whose browser pages may call /health and /trigger; null: none. */
  allowedOrigin: string | null;
  token: string;
  /**
   * With it, every request to the backend is signed (X-Cronhooks-Signature)
   * and carries no token; null sends the token (see signing.ts).
   */
  signingSecret: string | null;
}

/** A setting the Worker cannot run with; the message names it and never holds a secret. */
export class ConfigError extends Error {
  override name = "ConfigError";

  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

export function readSettings(env: Env): Settings {
  const backendBase = readBackendBase(env.BACKEND_BASE);
  if (!(env.ENVIRONMENT in SCHEDULES)) {
    throw new ConfigError(
      "ENVIRONMENT",
      `ENVIRONMENT must be one of ${Object.keys(SCHEDULES).join(", ")}`,
    );
  }
  if (!env.CRONHOOKS_TOKEN) {
    // Every call would be refused with 401: say why once, up front.
    throw new ConfigError(
      "CRONHOOKS_TOKEN",
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
    allowedOrigin: readAllowedOrigin(env.ALLOWED_ORIGIN),
    token: env.CRONHOOKS_TOKEN,
    signingSecret: env.SIGNING_SECRET ? env.SIGNING_SECRET : null,
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
      "POLL_JOBS",
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
    throw new ConfigError(name, `${name} must be an integer >= ${minimum}`);
  }
  return value;
}

/**
 * Domains reserved for documentation and tests (RFC 2606, RFC 6761): a
 * BACKEND_BASE there is a placeholder someone forgot to replace, and the token
 * must not go to whoever answers for it.
 */
const PLACEHOLDER_DOMAINS = ["example.com", "example.net", "example.org"];
const PLACEHOLDER_TLDS = ["example", "invalid", "test"];

/** How to fix a missing, unreadable or placeholder BACKEND_BASE. */
const SET_BACKEND_BASE =
  "set it to your Django app's URL in wrangler.toml ([env.<name>.vars])";

/**
 * BACKEND_BASE without its trailing slashes, so `${backendBase}/cron/<job>` is
 * always one slash. Every request carries the token, so it must go over https
 * to a real host: plain http only to this machine (wrangler dev, the tests).
 * The messages name the scheme or the host, never the whole value, which might
 * carry credentials.
 */
export function readBackendBase(raw: string | undefined): string {
  const value = (raw ?? "").trim();
  const problem = (message: string) =>
    new ConfigError("BACKEND_BASE", `BACKEND_BASE ${message}`);
  if (value === "") throw problem(`is not set: ${SET_BACKEND_BASE}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw problem(`is not a URL: ${SET_BACKEND_BASE}`);
  }
  // The URL parser lowercases the host and normalises IP addresses
  // ("http://127.1" is 127.0.0.1); a final dot names the same host.
  const host = url.hostname.replace(/\.$/, "");
  const placeholder =
    PLACEHOLDER_DOMAINS.find((d) => host === d || host.endsWith(`.${d}`)) ??
    PLACEHOLDER_TLDS.find((tld) => host === tld || host.endsWith(`.${tld}`));
  if (placeholder !== undefined) {
    throw problem(
      `is a placeholder: ${host} is reserved for examples (RFC 2606, RFC 6761); ${SET_BACKEND_BASE}`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw problem(`must be an https:// URL, not ${url.protocol}`);
  }
  if (url.protocol === "http:" && !isLoopback(host)) {
    throw problem(
      "must be an https:// URL: http:// is allowed only for localhost, " +
        "*.localhost, 127.0.0.0/8 and [::1], since the token goes with every request",
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw problem("must not hold credentials: the token is the credential");
  }
  if (/[?#]/.test(value)) {
    // `${backendBase}/cron/<job>` would land in the query string or fragment.
    throw problem("must not have a query string or fragment");
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

function isLoopback(host: string): boolean {
  return (
    host === "localhost" ||
    host.endsWith(".localhost") ||
    host === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
  );
}

/**
 * ALLOWED_ORIGIN as a browser sends it in Origin ("https://admin.example.org",
 * no path, no default port); null when empty. One origin, never "*": the
 * endpoints take the token, and only a page the operator names may call them.
 */
export function readAllowedOrigin(raw: string | undefined): string | null {
  const value = (raw ?? "").trim();
  if (value === "") return null;
  const problem = new ConfigError(
    "ALLOWED_ORIGIN",
    'ALLOWED_ORIGIN must be one origin such as "https://admin.example.org" (scheme, host and port only), or empty for no CORS',
  );
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw problem;
  }
  if (
    (url.protocol !== "https:" && url.protocol !== "http:") ||
    url.username !== "" ||
    url.password !== "" ||
    url.pathname !== "/" ||
    /[?#]/.test(value)
  ) {
    throw problem;
  }
  return url.origin;
}
