// Test helpers that run inside workerd: a handle on one namespace of the fake
// backend, an Env pointing at it, and the Worker's JSON log lines.
import { env } from "cloudflare:workers";
import { inject, vi } from "vitest";
import type { Env } from "../src/settings";
import type { ReceivedRequest, Reply } from "./fake-backend-types";

export class FakeBackend {
  readonly origin = `http://127.0.0.1:${inject("backendPort")}`;
  readonly base: string;

  constructor(readonly namespace: string = crypto.randomUUID()) {
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

/** The development environment's bindings with the given vars replaced. */
export function testEnv(overrides: Partial<Env> = {}): Env {
  return {
    BACKEND_BASE: env.BACKEND_BASE,
    ENVIRONMENT: env.ENVIRONMENT,
    LOG_LEVEL: env.LOG_LEVEL,
    RETRY_MAX_ATTEMPTS: env.RETRY_MAX_ATTEMPTS,
    RETRY_INITIAL_DELAY: env.RETRY_INITIAL_DELAY,
    REQUEST_TIMEOUT: env.REQUEST_TIMEOUT,
    CRONHOOKS_TOKEN: env.CRONHOOKS_TOKEN,
    ...overrides,
  };
}

export type LogLine = Record<string, unknown>;

/** Collects what the Worker logs from now on, parsed, and keeps it off the test output. */
export function captureLogs(): { lines(): LogLine[]; raw(): string[] } {
  const spy = vi.spyOn(console, "log").mockImplementation(() => {});
  const raw = () => spy.mock.calls.map((args) => String(args[0]));
  return {
    raw,
    lines: () => raw().map((line) => JSON.parse(line) as LogLine),
  };
}
