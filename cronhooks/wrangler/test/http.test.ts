import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import {
  backoffDelay,
  callJob,
  idempotencyKey,
  isRetryable,
  MAX_BACKOFF_MS,
  outcomeOf,
  parseRetryAfter,
  retryDelay,
  statusField,
  type Answer,
} from "../src/http";
import { jsonLogger } from "../src/log";
import { readSettings, type Env } from "../src/settings";
import { TEST_TOKEN } from "./fake-backend-types";
import { accepted, captureLogs, FakeBackend, testEnv } from "./helpers";

const UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TICK = Date.UTC(2026, 0, 1, 23, 33);
const RUN_ID = "0b9a7c3e-5d4f-4e21-8a6b-1c2d3e4f5a6b";

/** Calls one job the way a cron tick does, against `backend`, logging at debug. */
async function call(
  backend: FakeBackend,
  target: string,
  overrides: Partial<Env> = {},
  scheduledTime = TICK,
) {
  const settings = readSettings(
    testEnv({ BACKEND_BASE: backend.base, LOG_LEVEL: "debug", ...overrides }),
  );
  const { result } = await callJob(
    target,
    scheduledTime,
    settings,
    jsonLogger(settings.logLevel),
  );
  return result;
}

/** Each log line as [level, event, status, outcome]: what the log tells a reader. */
function summary(logs: ReturnType<typeof captureLogs>) {
  return logs
    .lines()
    .map((line) => [line.level, line.event, line.status, line.outcome]);
}

function answer(
  status: Answer["status"],
  retryAfter: string | null = null,
): Answer {
  return { status, retryAfter, backendStatus: null };
}

describe("outcomeOf and isRetryable", () => {
  it.each([
    [200, "ok", false],
    [202, "accepted", false],
    [204, "ok", false],
    [301, "failed", false],
    [400, "failed", false],
    [401, "failed", false],
    [404, "failed", false],
    [405, "failed", false],
    [409, "skipped", false],
    [413, "failed", false],
    [429, "failed", true],
    [500, "failed", true],
    [503, "failed", true],
    ["timeout", "failed", true],
    ["network_error", "failed", true],
  ] as const)("%s is %s, retryable: %s", (status, outcome, retryable) => {
    expect(outcomeOf(status)).toBe(outcome);
    expect(isRetryable(status)).toBe(retryable);
  });
});

describe("backoffDelay", () => {
  it("is full jitter over a window that doubles per attempt", () => {
    expect(backoffDelay(1, 1000, () => 0)).toBe(0);
    expect(backoffDelay(1, 1000, () => 0.999)).toBe(999);
    expect(backoffDelay(2, 1000, () => 0.999)).toBe(1998);
    expect(backoffDelay(3, 1000, () => 0.5)).toBe(2000);
  });

  it("never waits longer than the cap", () => {
    expect(backoffDelay(30, 1000, () => 0.999)).toBeLessThan(MAX_BACKOFF_MS);
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds and HTTP dates", () => {
    expect(parseRetryAfter("7")).toBe(7000);
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
  });

  it.each([null, "", "soon", "-5", "1.5"])("ignores %j", (value) => {
    expect(parseRetryAfter(value)).toBeNull();
  });
});

describe("retryDelay", () => {
  const settings = { maxAttempts: 3, initialDelayMs: 100 };
  const half = () => 0.5;

  it("backs off after a retryable failure while attempts remain", () => {
    expect(retryDelay(answer(503), 1, settings, half)).toBe(50);
    expect(retryDelay(answer("timeout"), 2, settings, half)).toBe(100);
    expect(retryDelay(answer(503), 3, settings, half)).toBeNull();
  });

  it("honours Retry-After instead of the backoff", () => {
    expect(retryDelay(answer(429, "2"), 1, settings, half)).toBe(2000);
  });

  it("stops when Retry-After asks for longer than it will wait", () => {
    expect(retryDelay(answer(503, "3600"), 1, settings, half)).toBeNull();
  });

  it("never retries a 4xx other than 429", () => {
    for (const status of [400, 401, 404, 405, 409, 413]) {
      expect(retryDelay(answer(status, "1"), 1, settings, half)).toBeNull();
    }
  });
});

describe("idempotencyKey", () => {
  it("is stable for one job at one tick, and header-safe", async () => {
    const key = await idempotencyKey("mop-recent?delta=25", TICK);
    expect(await idempotencyKey("mop-recent?delta=25", TICK)).toBe(key);
    expect(key).toMatch(/^[0-9a-f]{32}$/);
  });

  it("differs across jobs and across ticks", async () => {
    const key = await idempotencyKey("ee-recent", TICK);
    expect(await idempotencyKey("check-current", TICK)).not.toBe(key);
    expect(await idempotencyKey("ee-recent", TICK + 300_000)).not.toBe(key);
  });
});

describe("statusField", () => {
  it("reads the status of a JSON answer, and nothing else", () => {
    expect(statusField('{"status": "already_running"}')).toBe(
      "already_running",
    );
    expect(statusField('{"status": 3}')).toBeNull();
    expect(statusField("<html>Bad gateway</html>")).toBeNull();
    expect(statusField(`{"status": "${"x".repeat(500)}"}`)).toHaveLength(64);
  });
});

describe("callJob", () => {
  it("POSTs to BACKEND_BASE/cron/<target> with the token, a correlation id and an idempotency key", async () => {
    const backend = new FakeBackend();
    const result = await call(backend, "mop-recent?delta=25");

    const [request, ...others] = await backend.requests();
    expect(others).toEqual([]);
    expect(request?.method).toBe("POST");
    expect(request?.path).toBe("/cron/mop-recent?delta=25");
    expect(request?.headers.authorization).toBe(`Bearer ${TEST_TOKEN}`);
    expect(request?.headers["x-correlation-id"]).toMatch(UUID);
    expect(request?.headers["x-correlation-id"]).toBe(result.correlation_id);
    expect(request?.headers["idempotency-key"]).toBe(
      await idempotencyKey("mop-recent?delta=25", TICK),
    );
    expect(result).toMatchObject({
      job: "mop-recent?delta=25",
      attempts: 1,
      status: 200,
      backend_status: "succeeded",
      outcome: "ok",
    });
  });

  it("sends a fresh correlation id on each call", async () => {
    const backend = new FakeBackend();
    await call(backend, "ee-recent");
    await call(backend, "ee-recent");
    const [first, second] = await backend.requests();
    expect(first?.headers["x-correlation-id"]).toMatch(UUID);
    expect(second?.headers["x-correlation-id"]).toMatch(UUID);
    expect(first?.headers["x-correlation-id"]).not.toBe(
      second?.headers["x-correlation-id"],
    );
  });

  it("retries a 503 and succeeds on the second attempt, with the same ids", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [
        { status: 503, body: { status: "unavailable" } },
        { status: 200 },
      ],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({ attempts: 2, status: 200, outcome: "ok" });
    expect(summary(logs)).toEqual([
      ["warn", "attempt", 503, "retry"],
      ["info", "attempt", 200, "ok"],
      ["info", "result", 200, "ok"],
    ]);
    const requests = await backend.requests();
    expect(requests).toHaveLength(2);
    // A retry is the same call: the backend can tie its attempts together.
    expect(new Set(requests.map((r) => r.headers["x-correlation-id"]))).toEqual(
      new Set([result.correlation_id]),
    );
    expect(
      new Set(requests.map((r) => r.headers["idempotency-key"])).size,
    ).toBe(1);
  });

  it("gives up after RETRY_MAX_ATTEMPTS answers of 503", async () => {
    const backend = new FakeBackend();
    await backend.plan({ "/cron/ee-recent": [{ status: 503 }] });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({
      attempts: 3,
      status: 503,
      outcome: "failed",
    });
    expect(await backend.requests()).toHaveLength(3);
    expect(summary(logs)).toEqual([
      ["warn", "attempt", 503, "retry"],
      ["warn", "attempt", 503, "retry"],
      ["warn", "attempt", 503, "failed"],
      ["error", "result", 503, "failed"],
    ]);
  });

  it("makes a single attempt when RETRY_MAX_ATTEMPTS is 1", async () => {
    const backend = new FakeBackend();
    await backend.plan({ "/cron/ee-recent": [{ status: 503 }] });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent", {
      RETRY_MAX_ATTEMPTS: "1",
    });
    expect(result.attempts).toBe(1);
    expect(await backend.requests()).toHaveLength(1);
    expect(summary(logs)).toEqual([
      ["warn", "attempt", 503, "failed"],
      ["error", "result", 503, "failed"],
    ]);
  });

  it("waits as long as a 429's Retry-After says before trying again", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [
        { status: 429, headers: { "Retry-After": "1" } },
        { status: 200 },
      ],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({ attempts: 2, outcome: "ok" });
    expect(logs.lines()[0]).toMatchObject({
      level: "warn",
      status: 429,
      outcome: "retry",
      retry_in_ms: 1000,
    });
    const [first, second] = await backend.requests();
    // RETRY_INITIAL_DELAY is 1 ms here: only Retry-After explains a 1 s wait.
    expect(second!.received_at - first!.received_at).toBeGreaterThanOrEqual(
      990,
    );
  });

  it("retries when the connection drops without an answer", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [{ reset: true }, { status: 200 }],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({ attempts: 2, status: 200, outcome: "ok" });
    const attempts = logs.lines().filter((line) => line.event === "attempt");
    expect(attempts.map((line) => line.status)).toEqual(["network_error", 200]);
    expect(attempts.map((line) => line.outcome)).toEqual(["retry", "ok"]);
  });

  it("retries when nothing listens, then reports a network error", async () => {
    const backend = new FakeBackend();
    const logs = captureLogs();
    const result = await call(backend, "ee-recent", {
      BACKEND_BASE: `http://127.0.0.1:${inject("closedPort")}`,
    });
    expect(result).toMatchObject({
      attempts: 3,
      status: "network_error",
      outcome: "failed",
    });
    expect(summary(logs)).toEqual([
      ["warn", "attempt", "network_error", "retry"],
      ["warn", "attempt", "network_error", "retry"],
      ["warn", "attempt", "network_error", "failed"],
      ["error", "result", "network_error", "failed"],
    ]);
    expect(logs.lines()[0]?.error).toEqual(expect.any(String));
  });

  it("aborts an attempt after REQUEST_TIMEOUT and retries it", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [{ hang: true }, { status: 200 }],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent", { REQUEST_TIMEOUT: "200" });

    expect(result).toMatchObject({ attempts: 2, status: 200, outcome: "ok" });
    const [first, second] = await backend.requests();
    expect(second!.received_at - first!.received_at).toBeGreaterThanOrEqual(
      190,
    );
    const attempts = logs.lines().filter((line) => line.event === "attempt");
    expect(attempts[0]).toMatchObject({ status: "timeout", outcome: "retry" });
  });

  it("fails with 'timeout' when every attempt hangs", async () => {
    const backend = new FakeBackend();
    await backend.plan({ "/cron/ee-recent": [{ hang: true }] });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent", { REQUEST_TIMEOUT: "100" });
    expect(result).toMatchObject({
      attempts: 3,
      status: "timeout",
      outcome: "failed",
    });
    expect(summary(logs).at(-1)).toEqual([
      "error",
      "result",
      "timeout",
      "failed",
    ]);
  });

  it.each([400, 401, 404, 405, 413])("never retries a %i", async (status) => {
    const backend = new FakeBackend();
    await backend.plan({ "/cron/ee-recent": [{ status }, { status: 200 }] });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({ attempts: 1, status, outcome: "failed" });
    expect(await backend.requests()).toHaveLength(1);
    expect(summary(logs)).toEqual([
      ["warn", "attempt", status, "failed"],
      ["error", "result", status, "failed"],
    ]);
  });

  it("logs a 409 as skipped after one attempt, not as a failure", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [
        { status: 409, body: { status: "already_running" } },
        { status: 200 },
      ],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({
      attempts: 1,
      status: 409,
      backend_status: "already_running",
      outcome: "skipped",
    });
    expect(await backend.requests()).toHaveLength(1);
    const [resultLine] = logs.lines().filter((line) => line.event === "result");
    expect(resultLine).toMatchObject({ level: "info", outcome: "skipped" });
  });

  it("does not retry a replayed failure: the backend already ran this tick", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [
        {
          status: 500,
          body: { status: "failed", replayed: true },
          headers: { "Idempotent-Replayed": "true" },
        },
        { status: 200 },
      ],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({
      attempts: 1,
      status: 500,
      replayed: true,
      outcome: "failed",
    });
    expect(await backend.requests()).toHaveLength(1);
    const [resultLine] = logs.lines().filter((line) => line.event === "result");
    expect(resultLine).toMatchObject({ replayed: true, outcome: "failed" });
  });

  it("takes a 202 as accepted, never retried, and logs its run_id and status_url", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID), { status: 200 }],
    });
    const logs = captureLogs();
    const result = await call(backend, "parties-import");

    const statusUrl = `${backend.base}/cron/runs/${RUN_ID}`;
    expect(result).toMatchObject({
      attempts: 1,
      status: 202,
      backend_status: "queued",
      outcome: "accepted",
      run_id: RUN_ID,
      status_url: statusUrl,
      final_status: null,
    });
    expect(await backend.requests()).toHaveLength(1);
    const [resultLine] = logs.lines().filter((line) => line.event === "result");
    expect(resultLine).toMatchObject({
      level: "info",
      outcome: "accepted",
      run_id: RUN_ID,
      status_url: statusUrl,
    });
  });

  it("takes a 202's status_url from Location when the body has none", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [
        {
          status: 202,
          headers: { Location: "https://backend.test/cron/runs/x" },
          body: { status: "queued", run_id: RUN_ID },
        },
      ],
    });
    const result = await call(backend, "parties-import");
    expect(result.status_url).toBe("https://backend.test/cron/runs/x");
  });

  it("does not retry a replayed 202 of a run still going", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [
        accepted(backend, RUN_ID, {
          status: "running",
          headers: { "Idempotent-Replayed": "true" },
        }),
        { status: 200 },
      ],
    });
    const result = await call(backend, "parties-import");

    expect(result).toMatchObject({
      attempts: 1,
      status: 202,
      backend_status: "running",
      replayed: true,
      outcome: "accepted",
      run_id: RUN_ID,
    });
    expect(await backend.requests()).toHaveLength(1);
  });

  it("still retries a 500 that is not a replay", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [{ status: 500 }, { status: 200 }],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    expect(result).toMatchObject({ attempts: 2, status: 200, replayed: false });
    expect(summary(logs)[0]).toEqual(["warn", "attempt", 500, "retry"]);
  });

  it("logs one line per attempt and one result line, never the token", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [{ status: 500 }, { status: 503 }],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");

    const lines = logs.lines();
    expect(
      lines.map((line) => [line.level, line.event, line.attempt, line.status]),
    ).toEqual([
      ["warn", "attempt", 1, 500],
      ["warn", "attempt", 2, 503],
      ["warn", "attempt", 3, 503],
      ["error", "result", 3, 503],
    ]);
    for (const line of lines) {
      expect(line).toMatchObject({
        correlation_id: result.correlation_id,
        job: "ee-recent",
      });
      expect(typeof line.duration_ms).toBe("number");
      expect(typeof line.outcome).toBe("string");
    }
    expect(logs.raw().join("\n")).not.toContain(TEST_TOKEN);
  });

  it("logs every attempt at the production LOG_LEVEL info", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [{ status: 503 }, { status: 200 }],
    });
    const logs = captureLogs();
    await call(backend, "ee-recent", { LOG_LEVEL: "info" });
    expect(
      logs.lines().map((line) => [line.level, line.event, line.status]),
    ).toEqual([
      ["warn", "attempt", 503],
      ["info", "attempt", 200],
      ["info", "result", 200],
    ]);
  });

  it("keeps only retried and failed attempts at LOG_LEVEL warn", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [{ status: 503 }, { status: 200 }],
    });
    const logs = captureLogs();
    await call(backend, "ee-recent", { LOG_LEVEL: "warn" });
    expect(logs.lines().map((line) => [line.event, line.status])).toEqual([
      ["attempt", 503],
    ]);
  });

  it("does not follow a redirect, which would turn the POST into a GET", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [
        { status: 301, headers: { Location: `${backend.base}/elsewhere` } },
      ],
    });
    const logs = captureLogs();
    const result = await call(backend, "ee-recent");
    expect(summary(logs)).toEqual([
      ["warn", "attempt", 301, "failed"],
      ["error", "result", 301, "failed"],
    ]);
    expect(result).toMatchObject({
      attempts: 1,
      status: 301,
      outcome: "failed",
      status_url: null, // a redirect's Location names no run
    });
    expect((await backend.requests()).map((r) => r.path)).toEqual([
      "/cron/ee-recent",
    ]);
  });
});
