import {
  createExecutionContext,
  createScheduledController,
  waitOnExecutionContext,
} from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, inject, it, vi } from "vitest";
import { jobsForCron } from "../src/jobs";
import { ConfigError, type Env } from "../src/settings";
import { TEST_TOKEN } from "./fake-backend-types";
import worker, { SCHEDULES } from "./fixture-worker";
import {
  accepted,
  callWorker,
  captureLogs,
  FakeBackend,
  fetchWorker,
  request,
  run,
  testEnv,
} from "./helpers";

const UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TICK = Date.UTC(2026, 0, 1, 2, 6);
const RUN_ID = "3d6e9f12-4a5b-4c7d-8e9f-a0b1c2d3e4f5";
const RUN_PATH = `/cron/runs/${RUN_ID}`;

/** Fires one cron tick as Cloudflare would, and waits for its waitUntil work. */
async function fire(env: Env, cron: string, scheduledTime = TICK) {
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ cron, scheduledTime }),
    env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
}

describe("scheduled", () => {
  // Every cron of every environment of the fixture schedule.
  const ticks = Object.entries(SCHEDULES).flatMap(([environment, crons]) =>
    Object.keys(crons).map((cron) => [environment, cron] as const),
  );

  it("has a tick to check in every environment", () => {
    expect(new Set(ticks.map(([environment]) => environment))).toEqual(
      new Set(["production", "staging", "development"]),
    );
  });

  it.each(ticks)("%s: %j fires exactly its jobs", async (environment, cron) => {
    const backend = new FakeBackend();
    await fire(
      testEnv({ ENVIRONMENT: environment, BACKEND_BASE: backend.base }),
      cron,
    );

    const paths = (await backend.requests()).map((r) => r.path).sort();
    const expected = (jobsForCron(SCHEDULES, environment, cron) ?? []).map(
      (t) => `/cron/${t}`,
    );
    expect(expected.length).toBeGreaterThan(0);
    expect(paths).toEqual(expected.sort());
  });

  it("fires production's nightly mop-recent with its query string", async () => {
    const backend = new FakeBackend();
    await fire(
      testEnv({ ENVIRONMENT: "production", BACKEND_BASE: backend.base }),
      "50 23 * * *",
    );
    expect((await backend.requests()).map((r) => r.path)).toEqual([
      "/cron/mop-recent?delta=25",
    ]);
  });

  it.each([
    ["production", "*/20 * * * *"], // staging's cron
    ["development", "*/10 * * * *"],
    ["staging", "* * * * *"],
  ])(
    "%s: an unknown cron %j fires nothing and logs an error",
    async (environment, cron) => {
      const backend = new FakeBackend();
      const logs = captureLogs();
      await fire(
        testEnv({ ENVIRONMENT: environment, BACKEND_BASE: backend.base }),
        cron,
      );

      expect(await backend.requests()).toEqual([]);
      expect(logs.lines()).toEqual([
        { level: "error", event: "unknown_cron", cron, environment },
      ]);
    },
  );

  it("keeps a job's idempotency key across re-runs of one tick, and changes it per job and tick", async () => {
    const backend = new FakeBackend();
    const env = testEnv({
      ENVIRONMENT: "production",
      BACKEND_BASE: backend.base,
    });
    await fire(env, "*/10 * * * *", TICK);
    await fire(env, "*/10 * * * *", TICK); // the same tick delivered again
    await fire(env, "15 3 * * *", TICK);
    await fire(env, "*/10 * * * *", TICK + 600_000); // the next tick

    const requests = await backend.requests();
    const keys = requests.map((r) => r.headers["idempotency-key"]);
    expect(requests.map((r) => r.path)).toEqual([
      "/cron/ee-recent",
      "/cron/ee-recent",
      "/cron/parties-import",
      "/cron/ee-recent",
    ]);
    expect(keys[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(new Set(keys).size).toBe(3);

    // ...while every call gets its own correlation id.
    const ids = requests.map((r) => r.headers["x-correlation-id"]);
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(4);
  });

  it("hands the calls to ctx.waitUntil, so they outlive scheduled()", async () => {
    const backend = new FakeBackend();
    const ctx = createExecutionContext();
    const waitUntil = vi.spyOn(ctx, "waitUntil");
    await worker.scheduled(
      createScheduledController({ cron: "0 */4 * * *", scheduledTime: TICK }),
      testEnv({ BACKEND_BASE: backend.base }),
      ctx,
    );
    expect(waitUntil).toHaveBeenCalledTimes(1);
    expect(waitUntil.mock.calls[0]?.[0]).toBeInstanceOf(Promise);
    await waitOnExecutionContext(ctx);
    expect((await backend.requests()).map((r) => r.path)).toEqual([
      "/cron/check-current",
    ]);
  });

  it("follows a polled job's background run to its end within the tick's waitUntil", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
      [RUN_PATH]: [run("running"), run("succeeded")],
    });
    const logs = captureLogs();
    await fire(
      testEnv({
        ENVIRONMENT: "production",
        BACKEND_BASE: backend.base,
        POLL_JOBS: "parties-import",
        POLL_INTERVAL: "100",
      }),
      "15 3 * * *",
    );

    expect((await backend.requests()).map((r) => r.path)).toEqual([
      "/cron/parties-import",
      RUN_PATH,
      RUN_PATH,
    ]);
    const finished = logs.lines().filter((l) => l.event === "run_finished");
    expect(finished).toEqual([
      expect.objectContaining({ run_id: RUN_ID, status: "succeeded" }),
    ]);
  });

  it("does not poll with the default POLL_JOBS, which names no job", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
    });
    await fire(
      testEnv({ ENVIRONMENT: "production", BACKEND_BASE: backend.base }),
      "15 3 * * *",
    );
    expect((await backend.requests()).map((r) => r.path)).toEqual([
      "/cron/parties-import",
    ]);
  });

  it("refuses to run without a token, and logs why", async () => {
    const backend = new FakeBackend();
    const logs = captureLogs();
    await expect(
      fire(
        testEnv({ BACKEND_BASE: backend.base, CRONHOOKS_TOKEN: "" }),
        "0 */4 * * *",
      ),
    ).rejects.toThrow(/CRONHOOKS_TOKEN/);
    expect(await backend.requests()).toEqual([]);
    expect(logs.lines()).toEqual([
      expect.objectContaining({ level: "error", setting: "CRONHOOKS_TOKEN" }),
    ]);
  });

  it("runs through the runtime's own scheduled event with the wrangler.toml environment", async () => {
    const backend = new FakeBackend("self");
    const before = (await backend.requests()).length;
    // This resolves once the event's waitUntil work is done.
    // The loopback can deliver a scheduled event at run time; only the
    // experimental types declare it.
    const loopback = exports.default as unknown as {
      scheduled(options: {
        cron: string;
        scheduledTime: Date;
      }): Promise<unknown>;
    };
    await loopback.scheduled({
      cron: "0 */4 * * *",
      scheduledTime: new Date(TICK),
    });
    const requests = (await backend.requests()).slice(before);
    expect(requests.map((r) => r.path)).toEqual(["/cron/check-current"]);
    expect(requests[0]?.headers.authorization).toBe(`Bearer ${TEST_TOKEN}`);
  });
});

describe("POST /trigger", () => {
  it.each([
    ["no token", undefined],
    ["a wrong token", "not-the-token"],
    ["an empty token", ""],
  ])("answers 401 to %s and runs nothing", async (_, token) => {
    const backend = new FakeBackend();
    const logs = captureLogs();
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base }),
      request(
        "POST",
        "/trigger?job=check-current",
        token === undefined ? {} : { token },
      ),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    expect(body).toEqual({ status: "unauthorized" });
    expect(await backend.requests()).toEqual([]);
    // Only this request's line: work a previous test left running in the
    // runtime (its own scheduled event) may still log into the same console.
    const own = logs.lines().filter((line) => line.event === "unauthorized");
    expect(own).toEqual([{ level: "warn", event: "unauthorized" }]);
  });

  it("runs the job named in the query string with the right token", async () => {
    const backend = new FakeBackend();
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base }),
      request("POST", "/trigger?job=check-current", { token: TEST_TOKEN }),
    );
    expect(response.status).toBe(200);
    expect(body.status).toBe("ok");
    expect(body.results).toEqual([
      expect.objectContaining({
        job: "check-current",
        status: 200,
        attempts: 1,
        outcome: "ok",
        correlation_id: expect.stringMatching(UUID),
      }),
    ]);
    const requests = await backend.requests();
    expect(requests.map((r) => r.path)).toEqual(["/cron/check-current"]);
    expect(requests[0]?.headers["x-correlation-id"]).toBe(
      body.results[0].correlation_id,
    );
  });

  it("runs the job named in a JSON body", async () => {
    const backend = new FakeBackend();
    const { response } = await fetchWorker(
      testEnv({ ENVIRONMENT: "production", BACKEND_BASE: backend.base }),
      request("POST", "/trigger", {
        token: TEST_TOKEN,
        body: JSON.stringify({ job: "mop-recent?delta=25" }),
      }),
    );
    expect(response.status).toBe(200);
    expect((await backend.requests()).map((r) => r.path)).toEqual([
      "/cron/mop-recent?delta=25",
    ]);
  });

  it.each([
    ['{"all": true}', JSON.stringify({ all: true })],
    ["no body", undefined],
  ])("runs every job of the environment for %s", async (_, payload) => {
    const backend = new FakeBackend();
    const { response, body } = await fetchWorker(
      testEnv({ ENVIRONMENT: "production", BACKEND_BASE: backend.base }),
      request("POST", "/trigger", {
        token: TEST_TOKEN,
        ...(payload === undefined ? {} : { body: payload }),
      }),
    );
    expect(response.status).toBe(200);
    expect(body.results.map((r: { job: string }) => r.job)).toEqual([
      "ee-recent",
      "parties-import",
      "check-current",
      "mop-recent?delta=25",
    ]);
    expect((await backend.requests()).map((r) => r.path).sort()).toEqual([
      "/cron/check-current",
      "/cron/ee-recent",
      "/cron/mop-recent?delta=25",
      "/cron/parties-import",
    ]);
  });

  it("calls the jobs in parallel", async () => {
    const backend = new FakeBackend();
    const slow = [{ delay_ms: 150 }];
    await backend.plan({
      "/cron/ee-recent": slow,
      "/cron/parties-import": slow,
      "/cron/check-current": slow,
      "/cron/mop-recent?delta=25": slow,
    });
    const { response } = await fetchWorker(
      testEnv({ ENVIRONMENT: "production", BACKEND_BASE: backend.base }),
      request("POST", "/trigger", { token: TEST_TOKEN }),
    );
    expect(response.status).toBe(200);
    const arrivals = (await backend.requests()).map((r) => r.received_at);
    expect(arrivals).toHaveLength(4);
    // All four arrived before the first answer (150 ms) was sent.
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeLessThan(150);
  });

  it("answers 502 with each outcome when a job fails", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/ee-recent": [{ status: 500, body: { status: "failed" } }],
      "/cron/parties-import": [
        { status: 409, body: { status: "already_running" } },
      ],
    });
    const logs = captureLogs();
    const { response, body } = await fetchWorker(
      testEnv({ ENVIRONMENT: "production", BACKEND_BASE: backend.base }),
      request("POST", "/trigger", { token: TEST_TOKEN }),
    );
    expect(response.status).toBe(502);
    expect(body.status).toBe("failed");
    // Only the failed job's result is an error; the skipped one is not.
    const errors = logs.lines().filter((line) => line.level === "error");
    expect(errors).toEqual([
      expect.objectContaining({
        event: "result",
        job: "ee-recent",
        status: 500,
      }),
    ]);
    const outcomes = Object.fromEntries(
      body.results.map(
        (r: { job: string; outcome: string; attempts: number }) => [
          r.job,
          [r.outcome, r.attempts],
        ],
      ),
    );
    expect(outcomes).toEqual({
      "ee-recent": ["failed", 3],
      "parties-import": ["skipped", 1],
      "check-current": ["ok", 1],
      "mop-recent?delta=25": ["ok", 1],
    });
  });

  it("answers a named job's 202 with the backend's body unchanged, and does not poll", async () => {
    const backend = new FakeBackend();
    const reply = accepted(backend, RUN_ID);
    await backend.plan({ "/cron/parties-import": [reply] });
    const { response, body } = await fetchWorker(
      testEnv({
        ENVIRONMENT: "production",
        BACKEND_BASE: backend.base,
        POLL_JOBS: "*",
        POLL_INTERVAL: "100",
      }),
      request("POST", "/trigger?job=parties-import", { token: TEST_TOKEN }),
    );
    expect(response.status).toBe(202);
    expect(body).toEqual(reply.body);
    expect((await backend.requests()).map((r) => r.path)).toEqual([
      "/cron/parties-import",
    ]);
  });

  it("counts a 202 as not failed among all jobs, with its run_id and status_url", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
    });
    const { response, body } = await fetchWorker(
      testEnv({ ENVIRONMENT: "production", BACKEND_BASE: backend.base }),
      request("POST", "/trigger", { token: TEST_TOKEN }),
    );
    expect(response.status).toBe(200);
    expect(body.status).toBe("ok");
    const byJob = Object.fromEntries(
      body.results.map((r: { job: string }) => [r.job, r]),
    );
    expect(byJob["parties-import"]).toMatchObject({
      status: 202,
      outcome: "accepted",
      run_id: RUN_ID,
      status_url: `${backend.base}${RUN_PATH}`,
      final_status: null,
    });
    expect(byJob["ee-recent"]).toMatchObject({
      outcome: "ok",
      run_id: null,
      status_url: null,
      final_status: null,
    });
  });

  it("answers 404 for a job this environment does not schedule", async () => {
    const backend = new FakeBackend();
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base }), // development: check-current only
      request("POST", "/trigger?job=ee-recent", { token: TEST_TOKEN }),
    );
    expect(response.status).toBe(404);
    expect(body).toMatchObject({ status: "unknown_job", job: "ee-recent" });
    expect(await backend.requests()).toEqual([]);
  });

  it.each(["not json", "[1]", JSON.stringify({ job: 3 })])(
    "answers 400 to the body %j",
    async (payload) => {
      const backend = new FakeBackend();
      const { response, body } = await fetchWorker(
        testEnv({ BACKEND_BASE: backend.base }),
        request("POST", "/trigger", { token: TEST_TOKEN, body: payload }),
      );
      expect(response.status).toBe(400);
      expect(body.status).toBe("bad_request");
      expect(await backend.requests()).toEqual([]);
    },
  );

  it("works through the runtime's own fetch with the wrangler.toml environment", async () => {
    const backend = new FakeBackend("self");
    const before = (await backend.requests()).length;
    const response = await exports.default.fetch(
      "https://worker.test/trigger",
      {
        method: "POST",
        headers: { Authorization: `Bearer ${TEST_TOKEN}` },
      },
    );
    expect(response.status).toBe(200);
    const requests = (await backend.requests()).slice(before);
    expect(requests.map((r) => r.path)).toEqual(["/cron/check-current"]);
  });
});

describe("GET /health", () => {
  it("is healthy when the backend is, without handing out the token", async () => {
    const backend = new FakeBackend();
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base }),
      request("GET", "/health"),
    );
    expect(response.status).toBe(200);
    expect(body).toEqual({
      status: "healthy",
      worker: { status: "ok", environment: "development" },
      backend: {
        reachable: true,
        status_code: 200,
        body: { status: "healthy" },
      },
    });
    const [call] = await backend.requests();
    expect(call?.path).toBe("/health");
    expect(call?.headers.authorization).toBeUndefined();
  });

  it("asks the backend for detail with the token when the caller has it", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/health": [
        {
          status: 200,
          body: { status: "healthy", checks: { database: "ok" } },
        },
      ],
    });
    const { body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base }),
      request("GET", "/health", { token: TEST_TOKEN }),
    );
    expect(body.backend.body).toEqual({
      status: "healthy",
      checks: { database: "ok" },
    });
    expect((await backend.requests())[0]?.headers.authorization).toBe(
      `Bearer ${TEST_TOKEN}`,
    );
  });

  it("is unhealthy, with the backend's answer, when the backend answers 503", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/health": [{ status: 503, body: { status: "unhealthy" } }],
    });
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base }),
      request("GET", "/health"),
    );
    expect(response.status).toBe(503);
    expect(body).toMatchObject({
      status: "unhealthy",
      worker: { status: "ok" },
      backend: {
        reachable: true,
        status_code: 503,
        body: { status: "unhealthy" },
      },
    });
  });

  it("reports an unreachable backend as 503 instead of throwing", async () => {
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: `http://127.0.0.1:${inject("closedPort")}` }),
      request("GET", "/health"),
    );
    expect(response.status).toBe(503);
    expect(body).toMatchObject({
      status: "unhealthy",
      worker: { status: "ok" },
      backend: { reachable: false, error: "network_error" },
    });
  });

  it("reports a backend that does not answer in time as 503", async () => {
    const backend = new FakeBackend();
    await backend.plan({ "/health": [{ hang: true }] });
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base, REQUEST_TIMEOUT: "100" }),
      request("GET", "/health"),
    );
    expect(response.status).toBe(503);
    expect(body.backend).toEqual({ reachable: false, error: "timeout" });
  });

  it("answers 503 misconfigured without the token, naming the missing setting", async () => {
    const backend = new FakeBackend();
    const logs = captureLogs();
    const { response, body } = await fetchWorker(
      testEnv({ BACKEND_BASE: backend.base, CRONHOOKS_TOKEN: "" }),
      request("GET", "/health"),
    );
    expect(response.status).toBe(503);
    expect(body).toEqual({
      status: "misconfigured",
      setting: "CRONHOOKS_TOKEN",
      error: expect.stringMatching(/^CRONHOOKS_TOKEN is not set/),
    });
    expect(await backend.requests()).toEqual([]);
    expect(logs.lines()).toEqual([
      {
        level: "error",
        event: "misconfigured",
        setting: "CRONHOOKS_TOKEN",
        error: body.error,
      },
    ]);
  });

  it("works through the runtime's own fetch with the wrangler.toml environment", async () => {
    const response = await exports.default.fetch("https://worker.test/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: "healthy",
      worker: { environment: "development" },
    });
  });
});

describe("other requests", () => {
  it.each([
    ["GET", "/trigger", "POST, OPTIONS"],
    ["POST", "/health", "GET, OPTIONS"],
    ["DELETE", "/trigger", "POST, OPTIONS"],
  ])("answers %s %s with 405 and Allow: %s", async (method, path, allow) => {
    const { response, body } = await fetchWorker(
      testEnv(),
      request(method, path),
    );
    expect(response.status).toBe(405);
    expect(response.headers.get("Allow")).toBe(allow);
    expect(body.status).toBe("method_not_allowed");
  });

  it.each(["/", "/cron/ee-recent", "/health/", "/trigger/x"])(
    "answers 404 for %s",
    async (path) => {
      const { response, body } = await fetchWorker(
        testEnv(),
        request("POST", path),
      );
      expect(response.status).toBe(404);
      expect(body.status).toBe("not_found");
    },
  );
});

describe("a BACKEND_BASE the Worker refuses", () => {
  // Refused bases the fake backend would answer: were the check skipped, the
  // backend would see the request, and the token with it.
  const reachable = (backend: FakeBackend) => [
    `http://user:pw@127.0.0.1:${inject("backendPort")}/${backend.namespace}`,
    `${backend.base}?next=/`,
    `${backend.base}#top`,
  ];
  // The rest would leave this machine: any fetch at all fails the test.
  const unreachable = [
    "https://example.com",
    "https://staging.example.com",
    "https://yoursite.example",
    "https://backend.invalid",
    "https://django.test",
    "http://yoursite.org",
    "http://10.0.0.5:8000",
    "not a url",
    "",
  ];

  /** A fetch that must never happen; a call is recorded, and goes nowhere. */
  function forbidFetch() {
    return vi
      .spyOn(globalThis, "fetch")
      .mockRejectedValue(new Error("the Worker fetched a refused base"));
  }

  it.each(unreachable)(
    "%j: a cron tick logs one error line, fetches nothing and fails",
    async (base) => {
      const fetch = forbidFetch();
      const logs = captureLogs();
      await expect(
        fire(
          testEnv({ ENVIRONMENT: "production", BACKEND_BASE: base }),
          "*/10 * * * *",
        ),
      ).rejects.toThrow(/^BACKEND_BASE /);
      expect(fetch).not.toHaveBeenCalled();
      expect(logs.lines()).toEqual([
        {
          level: "error",
          event: "misconfigured",
          setting: "BACKEND_BASE",
          error: expect.stringMatching(/^BACKEND_BASE /),
        },
      ]);
    },
  );

  it("sends nothing to a refused base that would answer", async () => {
    const backend = new FakeBackend();
    const logs = captureLogs();
    for (const base of reachable(backend)) {
      const env = testEnv({ ENVIRONMENT: "production", BACKEND_BASE: base });
      await expect(fire(env, "*/10 * * * *")).rejects.toThrow(ConfigError);
      const health = await callWorker(
        env,
        request("GET", "/health", { token: TEST_TOKEN }),
      );
      expect(health.status).toBe(503);
      const trigger = await callWorker(
        env,
        request("POST", "/trigger", { token: TEST_TOKEN }),
      );
      expect(trigger.status).toBe(503);
    }
    expect(await backend.requests()).toEqual([]);
    expect(logs.lines()).toHaveLength(3 * 3); // one per event
    expect(logs.raw().join("\n")).not.toContain(TEST_TOKEN);
  });

  it.each(unreachable)(
    "%j: /health answers 503 misconfigured, naming the problem",
    async (base) => {
      const fetch = forbidFetch();
      const logs = captureLogs();
      const { response, body } = await fetchWorker(
        testEnv({ BACKEND_BASE: base }),
        request("GET", "/health", { token: TEST_TOKEN }),
      );
      expect(response.status).toBe(503);
      expect(response.headers.get("Content-Type")).toBe("application/json");
      expect(body).toEqual({
        status: "misconfigured",
        setting: "BACKEND_BASE",
        error: expect.stringMatching(/^BACKEND_BASE /),
      });
      expect(JSON.stringify(body)).not.toContain(TEST_TOKEN);
      expect(fetch).not.toHaveBeenCalled();
      expect(logs.lines()).toEqual([
        expect.objectContaining({ event: "misconfigured", error: body.error }),
      ]);
    },
  );

  it("/health says which problem it is, and never the credentials in the URL", async () => {
    const logs = captureLogs();
    const answers = await Promise.all(
      [
        "https://example.com",
        "http://yoursite.org",
        "https://admin:hunter2@yoursite.org",
      ].map(async (base) => {
        const { body } = await fetchWorker(
          testEnv({ BACKEND_BASE: base }),
          request("GET", "/health"),
        );
        return body.error as string;
      }),
    );
    expect(answers).toEqual([
      expect.stringMatching(/placeholder: example\.com is reserved/),
      expect.stringMatching(/https:\/\/ URL: http:\/\/ is allowed only/),
      expect.stringMatching(/must not hold credentials/),
    ]);
    expect(logs.raw().join("\n")).not.toContain("hunter2");
  });

  it.each(unreachable)(
    "%j: /trigger refuses with 503 misconfigured, even with the token",
    async (base) => {
      const fetch = forbidFetch();
      const logs = captureLogs();
      const { response, body } = await fetchWorker(
        testEnv({ BACKEND_BASE: base }),
        request("POST", "/trigger?job=check-current", { token: TEST_TOKEN }),
      );
      expect(response.status).toBe(503);
      expect(body).toMatchObject({
        status: "misconfigured",
        setting: "BACKEND_BASE",
      });
      expect(fetch).not.toHaveBeenCalled();
      expect(logs.lines()).toHaveLength(1);
    },
  );

  // [::1] is accepted too (settings.test.ts); the fake backend listens on IPv4 only.
  it.each(["http://localhost:PORT/NS", "http://127.0.0.1:PORT/NS"])(
    "%s, a base on this machine, is called over http",
    async (template) => {
      const backend = new FakeBackend();
      const base = template
        .replace("PORT", String(inject("backendPort")))
        .replace("NS", backend.namespace);
      const { response } = await fetchWorker(
        testEnv({ BACKEND_BASE: base }),
        request("GET", "/health"),
      );
      expect(response.status).toBe(200);
      expect((await backend.requests()).map((r) => r.path)).toEqual([
        "/health",
      ]);
    },
  );
});
