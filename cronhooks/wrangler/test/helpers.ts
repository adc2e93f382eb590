// Test helpers that run inside workerd: a handle on one namespace of the fake
// backend, an Env pointing at it, and the Worker's JSON log lines.
import { env } from "cloudflare:workers";
import { inject } from "vitest";
import type { Env } from "../src/settings";
import type { createWorker } from "../src/worker";
import type { ReceivedRequest, Reply } from "./fake-backend-types";
import worker from "./fixture-worker";

export class FakeBackend {
  readonly origin: string;
  readonly base: string;

  /** A namespace of the fake backend, or of the foreign server with inject("foreignPort"). */
  constructor(
    readonly namespace: string = crypto.randomUUID(),
    port: number = inject("backendPort"),
  ) {
    this.origin = `http://127.0.0.1:${port}`;
    this.base = `${this.origin}/${namespace}`;
  }

  /** The answers for each path ("/cron/ee-recent", "/health"), in order, the last repeated. */
  async plan(plans: Record<string, Reply[]>): Promise<void> {
    const response = await fetch(`${this.origin}/__plan/${this.namespace}`, {
      method: "PUT",
      body: JSON.stringify(plans),
    });
    if (response.status !== 204) throw new Error("fake backend refused plan");
  }

  async requests(): Promise<ReceivedRequest[]> {
    const response = await fetch(`${this.origin}/__requests/${this.namespace}`);
    return response.json();
  }
}

/** The backend's 202 for a job it runs in the background, Location and all. */
export function accepted(
  backend: FakeBackend,
  runId: string,
  {
    status = "queued",
    headers = {},
    statusUrl = `${backend.base}/cron/runs/${runId}`,
  }: {
    status?: string;
    headers?: Record<string, string>;
    statusUrl?: string;
  } = {},
): Reply {
  return {
    status: 202,
    headers: { Location: statusUrl, ...headers },
    body: {
      status,
      job: "parties-import",
      run_id: runId,
      correlation_id: "from-the-backend",
      status_url: statusUrl,
      attempt: 1,
    },
  };
}

/** GET /cron/runs/<run_id>'s answer for a run in the given status. */
export function run(
  status: string,
  fields: Record<string, unknown> = {},
): Reply {
  return { status: 200, body: { status, job: "parties-import", ...fields } };
}

/** The development environment's bindings with the given vars replaced. */
export function testEnv(overrides: Partial<Env> = {}): Env {
  return {
    BACKEND_BASE: env.BACKEND_BASE,
    ENVIRONMENT: env.ENVIRONMENT,
    LOG_LEVEL: env.LOG_LEVEL,
    RETRY_MAX_ATTEMPTS: env.RETRY_MAX_ATTEMPTS,
    RETRY_INITIAL_DELAY: env.RETRY_INITIAL_DELAY,
    REQUEST_TIMEOUT: env.REQUEST_TIMEOUT,
    POLL_JOBS: env.POLL_JOBS,
    POLL_INTERVAL: env.POLL_INTERVAL,
    POLL_BUDGET: env.POLL_BUDGET,
    ALLOWED_ORIGIN: env.ALLOWED_ORIGIN,
    CRONHOOKS_TOKEN: env.CRONHOOKS_TOKEN,
    ...overrides,
  };
}

export type LogLine = Record<string, unknown>;

/**
 * What the Worker logged during the running test, kept off the output by
 * test/log-capture.ts, and whether the test reads it (captureLogs).
 */
export const testLog: { lines: string[]; read: boolean } = {
  lines: [],
  read: false,
};

/**
 * What the Worker logs from now on, parsed. A test that calls this asserts on
 * the lines it expects; any other test fails on a warn or error line.
 */
export function captureLogs(): { lines(): LogLine[]; raw(): string[] } {
  testLog.read = true;
  const from = testLog.lines.length;
  const raw = () => testLog.lines.slice(from);
  return {
    raw,
    lines: () => raw().map((line) => JSON.parse(line) as LogLine),
  };
}

/** A request to the Worker, with the bearer token when given. */
export function request(
  method: string,
  path: string,
  {
    token,
    body,
    headers: extra = {},
  }: { token?: string; body?: string; headers?: Record<string, string> } = {},
): Request {
  const headers: Record<string, string> = {
    ...extra,
    ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
  };
  return new Request(`https://worker.test${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
}

type Worker = ReturnType<typeof createWorker>;

/** The Worker's answer to `req`, through its fetch handler: the fixture Worker's unless given. */
export function callWorker(
  env: Env,
  req: Request,
  handler: Worker = worker,
): Promise<Response> {
  // What the runtime hands a fetch handler is an incoming request; ours is built here.
  return handler.fetch(
    req as Request<unknown, IncomingRequestCfProperties>,
    env,
  ) as Promise<Response>;
}

/** The Worker's answer and its JSON body. */
export async function fetchWorker(
  env: Env,
  req: Request,
  handler: Worker = worker,
) {
  const response = await callWorker(env, req, handler);
  return { response, body: (await response.json()) as Record<string, any> };
}
