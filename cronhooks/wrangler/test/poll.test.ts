import { describe, expect, inject, it } from "vitest";
import { callJob } from "../src/http";
import { jsonLogger } from "../src/log";
import { followRun, isPolled, jobName } from "../src/poll";
import { readSettings, type Env } from "../src/settings";
import { TEST_TOKEN } from "./fake-backend-types";
import {
  accepted,
  captureLogs,
  FakeBackend,
  run,
  testEnv,
  type LogLine,
} from "./helpers";

const RUN_ID = "6f1c2a4e-1b7d-4c5e-9a3f-0d2e8b7c6a51";
const RUN_PATH = `/cron/runs/${RUN_ID}`;
const TICK = Date.UTC(2026, 0, 1, 2, 6);

/**
 * Calls one job and follows its run as a cron tick does, with every job
 * polled every 100 ms for up to 2 s unless `overrides` say otherwise.
 */
async function callAndFollow(
  backend: FakeBackend,
  overrides: Partial<Env> = {},
  target = "parties-import",
) {
  const settings = readSettings(
    testEnv({
      BACKEND_BASE: backend.base,
      LOG_LEVEL: "debug",
      POLL_JOBS: "*",
      POLL_INTERVAL: "100",
      POLL_BUDGET: "2000",
      ...overrides,
    }),
  );
  const logger = jsonLogger(settings.logLevel);
  const { result } = await callJob(target, TICK, settings, logger);
  return followRun(result, settings, logger);
}

function linesOf(lines: LogLine[], event: string): LogLine[] {
  return lines.filter((line) => line.event === event);
}

async function polls(backend: FakeBackend) {
  return (await backend.requests()).filter((r) => r.method === "GET");
}

describe("jobName and isPolled", () => {
  it("names a job by its target without the query string", () => {
    expect(jobName("mop-recent?delta=25")).toBe("mop-recent");
    expect(jobName("ee-recent")).toBe("ee-recent");
  });

  it("polls the jobs POLL_JOBS names, every job for *, and none for nothing", () => {
    const named = { pollJobs: new Set(["mop-recent", "slow"]) };
    expect(isPolled("mop-recent?delta=25", named)).toBe(true);
    expect(isPolled("ee-recent", named)).toBe(false);
    expect(isPolled("ee-recent", { pollJobs: new Set(["*"]) })).toBe(true);
    expect(isPolled("ee-recent", { pollJobs: new Set<string>() })).toBe(false);
  });
});

describe("followRun", () => {
  it("polls BACKEND_BASE/cron/runs/<run_id> until the run succeeds, then logs run_finished and the outcome is ok", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
      [RUN_PATH]: [
        run("queued"),
        run("running"),
        run("succeeded", { duration_ms: 1234 }),
      ],
    });
    const logs = captureLogs();
    const result = await callAndFollow(backend);

    expect(result).toMatchObject({
      outcome: "ok",
      final_status: "succeeded",
      run_id: RUN_ID,
      status_url: `${backend.base}${RUN_PATH}`,
      backend_status: "queued",
    });
    const gets = await polls(backend);
    expect(gets.map((r) => r.path)).toEqual([RUN_PATH, RUN_PATH, RUN_PATH]);
    for (const get of gets) {
      expect(get.headers.authorization).toBe(`Bearer ${TEST_TOKEN}`);
      // The same id as the trigger call, so the backend can tie them together.
      expect(get.headers["x-correlation-id"]).toBe(result.correlation_id);
    }
    expect(gets[1]!.received_at - gets[0]!.received_at).toBeGreaterThanOrEqual(
      90,
    );
    expect(linesOf(logs.lines(), "run_finished")).toEqual([
      {
        level: "info",
        event: "run_finished",
        correlation_id: result.correlation_id,
        job: "parties-import",
        run_id: RUN_ID,
        status: "succeeded",
        duration_ms: 1234,
      },
    ]);
    expect(logs.raw().join("\n")).not.toContain(TEST_TOKEN);
  });

  it.each(["failed", "timed_out", "abandoned", "rejected"])(
    "makes the outcome failed for a run that ends %s, logged at error with the backend's error code",
    async (status) => {
      const backend = new FakeBackend();
      await backend.plan({
        "/cron/parties-import": [accepted(backend, RUN_ID)],
        [RUN_PATH]: [
          run(status, {
            duration_ms: 50,
            error: { code: `run_${status}`, message: "it went wrong" },
          }),
        ],
      });
      const logs = captureLogs();
      const result = await callAndFollow(backend);

      expect(result).toMatchObject({ outcome: "failed", final_status: status });
      expect(linesOf(logs.lines(), "run_finished")).toEqual([
        expect.objectContaining({
          level: "error",
          status,
          duration_ms: 50,
          error_code: `run_${status}`,
        }),
      ]);
    },
  );

  it("gives up when POLL_BUDGET is spent, logging the last status seen", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
      [RUN_PATH]: [run("queued"), run("running")],
    });
    const logs = captureLogs();
    const result = await callAndFollow(backend, { POLL_BUDGET: "300" });

    expect(result).toMatchObject({ outcome: "accepted", final_status: null });
    const gets = await polls(backend);
    // At most one poll per 100 ms of the 300 ms budget, the last on the
    // deadline (fewer when a poll itself is slow), and none after it.
    expect(gets.length).toBeGreaterThanOrEqual(2);
    expect(gets.length).toBeLessThanOrEqual(3);
    expect(linesOf(logs.lines(), "poll_gave_up")).toEqual([
      {
        level: "warn",
        event: "poll_gave_up",
        correlation_id: result.correlation_id,
        job: "parties-import",
        run_id: RUN_ID,
        status: "running",
        polls: gets.length,
        budget_ms: 300,
      },
    ]);
    expect(linesOf(logs.lines(), "run_finished")).toEqual([]);
  });

  it("asks again after a 503, a 429, a dropped connection and a timeout", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
      [RUN_PATH]: [
        { status: 503 },
        { status: 429 },
        { reset: true },
        { hang: true },
        run("succeeded"),
      ],
    });
    const logs = captureLogs();
    const result = await callAndFollow(backend, { REQUEST_TIMEOUT: "100" });

    expect(result).toMatchObject({ outcome: "ok", final_status: "succeeded" });
    expect(
      linesOf(logs.lines(), "poll").map((line) => [line.level, line.status]),
    ).toEqual([
      ["warn", 503],
      ["warn", 429],
      ["warn", "network_error"],
      ["warn", "timeout"],
      ["debug", 200],
    ]);
  });

  it.each([401, 403, 404])(
    "stops at a %i, which asking again will not change, with an error line",
    async (status) => {
      const backend = new FakeBackend();
      await backend.plan({
        "/cron/parties-import": [accepted(backend, RUN_ID)],
        [RUN_PATH]: [{ status, body: { status: "not_found" } }, run("running")],
      });
      const logs = captureLogs();
      const result = await callAndFollow(backend);

      expect(result).toMatchObject({ outcome: "accepted", final_status: null });
      expect(await polls(backend)).toHaveLength(1);
      expect(linesOf(logs.lines(), "poll_failed")).toEqual([
        {
          level: "error",
          event: "poll_failed",
          correlation_id: result.correlation_id,
          job: "parties-import",
          run_id: RUN_ID,
          status: "queued",
          http_status: status,
        },
      ]);
    },
  );

  it("never sends the token where the answer's status_url or Location points", async () => {
    const backend = new FakeBackend();
    const foreign = new FakeBackend(undefined, inject("foreignPort"));
    const elsewhere = `${foreign.base}${RUN_PATH}`;
    await backend.plan({
      "/cron/parties-import": [
        accepted(backend, RUN_ID, { statusUrl: elsewhere }),
      ],
      [RUN_PATH]: [run("succeeded")],
    });
    const result = await callAndFollow(backend);

    expect(result).toMatchObject({ outcome: "ok", status_url: elsewhere });
    expect(await foreign.requests()).toEqual([]);
    expect((await polls(backend)).map((r) => r.path)).toEqual([RUN_PATH]);
  });

  it.each([
    ["a path", "../../health"],
    ["a UUID with more after it", `${RUN_ID}/../../health`],
    ["not a UUID", "42"],
  ])("never builds a URL from a run_id that is %s", async (_, runId) => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, runId)],
    });
    const logs = captureLogs();
    const result = await callAndFollow(backend);

    expect(result).toMatchObject({ outcome: "accepted", run_id: runId });
    expect(await polls(backend)).toEqual([]);
    expect(linesOf(logs.lines(), "poll_skipped")).toEqual([
      expect.objectContaining({ level: "warn", run_id: runId }),
    ]);
  });

  it("does not poll a job POLL_JOBS does not name", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
    });
    const logs = captureLogs();
    const result = await callAndFollow(backend, {
      POLL_JOBS: "ee-recent,check-current",
    });

    expect(result).toMatchObject({ outcome: "accepted", final_status: null });
    expect(await polls(backend)).toEqual([]);
    expect(logs.lines().map((line) => line.event)).toEqual([
      "attempt",
      "result",
    ]);
  });

  it("polls a job with a query string by its name", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/mop-recent?delta=25": [accepted(backend, RUN_ID)],
      [RUN_PATH]: [run("succeeded")],
    });
    const result = await callAndFollow(
      backend,
      { POLL_JOBS: "mop-recent" },
      "mop-recent?delta=25",
    );
    expect(result).toMatchObject({ outcome: "ok", final_status: "succeeded" });
  });

  it("leaves an answer that is not a 202 as it is", async () => {
    const backend = new FakeBackend();
    const result = await callAndFollow(backend); // the fake's 200 "succeeded"

    expect(result).toMatchObject({
      status: 200,
      outcome: "ok",
      final_status: null,
    });
    expect(await polls(backend)).toEqual([]);
  });
});
