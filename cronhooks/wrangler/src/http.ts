// Calling one job on the backend: POST BACKEND_BASE/cron/<target> with a
// per-attempt timeout, retrying only what another attempt can fix.
import type { Logger } from "./log";
import type { Settings } from "./settings";
import { backendCredentials } from "./signing";

/**
 * ok: the job ran; accepted: the backend runs it in the background (202);
 * skipped: another run holds the job's lock (409). Only failed is a failure.
 */
export type Outcome = "ok" | "accepted" | "skipped" | "failed";
export type ErrorKind = "timeout" | "network_error";

export interface JobResult {
  job: string;
  correlation_id: string;
  attempts: number;
  /** The last attempt's HTTP status, or why it got none. */
  status: number | ErrorKind;
  /** The `status` field of the backend's JSON answer ("succeeded", "already_running"...). */
  backend_status: string | null;
  /** The backend answered with the stored result of an earlier attempt at this tick. */
  replayed: boolean;
  outcome: Outcome;
  duration_ms: number;
  /** The backend's id for the run, when its answer gave one (a 202 always does). */
  run_id: string | null;
  /** Where the backend says the run's status is: logged for people, never fetched (see poll.ts). */
  status_url: string | null;
  /**
   * A followed background run's final status ("succeeded", "timed_out"...);
   * null when it was not followed, or not to the end.
   */
  final_status: string | null;
}

/** How a call ended: its result, and the body of the answer it ended with (null without one). */
export interface Call {
  result: JobResult;
  body: string | null;
}

/** What one attempt got back: an HTTP answer, or an error kind instead of one. */
export interface Answer {
  status: number | ErrorKind;
  retryAfter: string | null;
  backendStatus: string | null;
  /** Idempotent-Replayed: true, the stored answer to this tick's idempotency key. */
  replayed?: boolean;
  /** A background run's id and status URL, from the JSON answer (or a 202's Location). */
  runId?: string | null;
  statusUrl?: string | null;
  /** The answer's text, for /trigger to pass a 202 through unchanged. */
  body?: string;
  error?: string;
}

/** Backoff never waits longer than this between attempts. */
export const MAX_BACKOFF_MS = 60_000;
/**
 * A Retry-After longer than this ends the retries instead: the backend is saying
 * "not now" (a disabled job, maintenance), and the next cron tick will ask again.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

export function outcomeOf(status: number | ErrorKind): Outcome {
  if (typeof status !== "number") return "failed";
  if (status === 202) return "accepted";
  if (status >= 200 && status < 300) return "ok";
  if (status === 409) return "skipped";
  return "failed";
}

/**
 * Network errors, timeouts, 5xx and 429 may go away on their own. Any other 4xx
 * (bad token, unknown job, 409 already running) will not, and retrying a 409
 * would only queue up behind the run that holds the lock.
 */
export function isRetryable(status: number | ErrorKind): boolean {
  if (typeof status !== "number") return true;
  return status === 429 || status >= 500;
}

/** Exponential backoff with full jitter: uniform in [0, base * 2^(attempt-1)), capped. */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(baseMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  return Math.floor(random() * ceiling);
}

/** Retry-After as delta-seconds or an HTTP date, in ms; null when absent or unreadable. */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Date.parse also takes "-5" or "1.5"; an HTTP date always names its day.
  if (!/[A-Za-z]{3}/.test(trimmed)) return null;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** How long to wait before the next attempt, or null to stop now. */
export function retryDelay(
  answer: Answer,
  attempt: number,
  settings: Pick<Settings, "maxAttempts" | "initialDelayMs">,
  random: () => number = Math.random,
): number | null {
  // A replayed answer is the stored result of this tick's first run (a failed
  // run's 500 included): asking again would only replay it again.
  if (
    attempt >= settings.maxAttempts ||
    answer.replayed === true ||
    !isRetryable(answer.status)
  ) {
    return null;
  }
  const retryAfter = parseRetryAfter(answer.retryAfter);
  if (retryAfter !== null) {
    return retryAfter > MAX_RETRY_AFTER_MS ? null : retryAfter;
  }
  return backoffDelay(attempt, settings.initialDelayMs, random);
}

/**
 * The same job at the same cron tick always gets the same key, so a backend
 * that sees a retried (or re-delivered) call can tell it from a new run. A hash
 * keeps it short and header-safe whatever the target's query string holds; 32
 * hex characters also fit the backend's correlation-id pattern.
 */
export async function idempotencyKey(
  target: string,
  scheduledTime: number,
): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${target}\n${scheduledTime}`),
  );
  return [...new Uint8Array(digest).slice(0, 16)]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("");
}

export async function callJob(
  target: string,
  scheduledTime: number,
  settings: Settings,
  logger: Logger,
): Promise<Call> {
  // One correlation id and one idempotency key for the whole call, retries
  // included, so the backend's log lines and run records of every attempt can
  // be tied back to this one call and this one tick.
  const correlationId = crypto.randomUUID();
  const headers = {
    "X-Correlation-ID": correlationId,
    "Idempotency-Key": await idempotencyKey(target, scheduledTime),
    Accept: "application/json",
    "User-Agent": "cronhooks-worker",
  };
  const url = `${settings.backendBase}/cron/${target}`;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const attemptStarted = Date.now();
    // Signed afresh for each attempt: the backend accepts a signature once.
    const credentials = await backendCredentials(settings, "POST", url);
    const answer = await post(
      url,
      { ...headers, ...credentials },
      settings.timeoutMs,
    );
    const outcome = outcomeOf(answer.status);
    const delay = retryDelay(answer, attempt, settings);
    // One line per attempt at info (the audit trail), warn when it
    // is retried or failed, so production logs show every try.
    const attemptLevel =
      delay !== null || outcome === "failed" ? "warn" : "info";
    logger.log(attemptLevel, {
      event: "attempt",
      correlation_id: correlationId,
      job: target,
      attempt,
      status: answer.status,
      backend_status: answer.backendStatus,
      ...(answer.replayed === true ? { replayed: true } : {}),
      duration_ms: Date.now() - attemptStarted,
      outcome: delay === null ? outcome : "retry",
      ...(delay === null ? {} : { retry_in_ms: delay }),
      ...(answer.error === undefined ? {} : { error: answer.error }),
    });
    if (delay === null) {
      const result: JobResult = {
        job: target,
        correlation_id: correlationId,
        attempts: attempt,
        status: answer.status,
        backend_status: answer.backendStatus,
        replayed: answer.replayed === true,
        outcome,
        duration_ms: Date.now() - started,
        run_id: answer.runId ?? null,
        status_url: answer.statusUrl ?? null,
        final_status: null,
      };
      logger.log(outcome === "failed" ? "error" : "info", {
        event: "result",
        correlation_id: result.correlation_id,
        job: result.job,
        attempt: result.attempts,
        status: result.status,
        backend_status: result.backend_status,
        replayed: result.replayed,
        duration_ms: result.duration_ms,
        outcome: result.outcome,
        run_id: result.run_id,
        status_url: result.status_url,
      });
      return { result, body: answer.body ?? null };
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** What came back from one timed request: the answer and its body, or why there was none. */
export type Fetched =
  { response: Response; body: string } | { error: ErrorKind; message: string };

/**
 * fetch() bounded by timeoutMs with an AbortController; never throws, a failure
 * to get an answer is a Fetched too. The body is read before the timer is
 * cleared: a backend that sends its headers and then stalls has timed out too.
 */
export async function fetchWithTimeout(
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Fetched> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    // redirect: "manual" because following a redirect would turn a POST into
    // a GET elsewhere; a BACKEND_BASE that redirects is a misconfiguration and
    // should show up as a 3xx.
    const response = await fetch(url, {
      ...init,
      signal: controller.signal,
      redirect: "manual",
    });
    return { response, body: await response.text() };
  } catch (error) {
    return {
      error: controller.signal.aborted ? "timeout" : "network_error",
      message: error instanceof Error ? error.message : String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}

async function post(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Answer> {
  const fetched = await fetchWithTimeout(
    url,
    { method: "POST", headers },
    timeoutMs,
  );
  if ("error" in fetched) {
    return {
      status: fetched.error,
      retryAfter: null,
      backendStatus: null,
      error: fetched.message,
    };
  }
  const { status, headers: answerHeaders } = fetched.response;
  const body = jsonBody(fetched.body);
  // Only a 202's Location names the run; a 3xx's names a redirect.
  const location = status === 202 ? answerHeaders.get("Location") : null;
  return {
    status,
    retryAfter: answerHeaders.get("Retry-After"),
    backendStatus: stringField(body, "status"),
    replayed: answerHeaders.get("Idempotent-Replayed") === "true",
    runId: stringField(body, "run_id"),
    statusUrl:
      stringField(body, "status_url", MAX_URL_LENGTH) ??
      location?.slice(0, MAX_URL_LENGTH) ??
      null,
    body: fetched.body,
  };
}

/** The parsed JSON of a body, or null if it is not JSON. */
export function jsonBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return null; // A proxy's HTML error page, say: the HTTP status says enough.
  }
}

/** Longer URLs from the backend are cut short in the log and the results. */
const MAX_URL_LENGTH = 2048;

/** A field of parsed JSON; undefined unless it is an object with that field. */
export function jsonField(parsed: unknown, name: string): unknown {
  return typeof parsed === "object" &&
    parsed !== null &&
    Object.hasOwn(parsed, name)
    ? (parsed as Record<string, unknown>)[name]
    : undefined;
}

/** A string field of parsed JSON, kept short enough to log; null if none. */
export function stringField(
  parsed: unknown,
  name: string,
  maxLength = 64,
): string | null {
  const value = jsonField(parsed, name);
  return typeof value === "string" ? value.slice(0, maxLength) : null;
}

/** The `status` string of a JSON answer, kept short enough to log; null if none. */
export function statusField(body: string): string | null {
  return stringField(jsonBody(body), "status");
}
