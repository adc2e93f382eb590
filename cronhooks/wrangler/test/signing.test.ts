import { describe, expect, it } from "vitest";
import { callJob } from "../src/http";
import { jsonLogger } from "../src/log";
import { followRun } from "../src/poll";
import { readSettings, type Env } from "../src/settings";
import { backendCredentials, signature } from "../src/signing";
import { TEST_TOKEN, type ReceivedRequest } from "./fake-backend-types";
import {
  accepted,
  captureLogs,
  FakeBackend,
  fetchWorker,
  request,
  run,
  testEnv,
} from "./helpers";

const SECRET = "test-signing-secret";
const RUN_ID = "0b7e4c1a-2d3f-4a5b-8c6d-7e8f9a0b1c2d";
const TICK = Date.UTC(2026, 0, 1, 2, 6);

/** HMAC-SHA256 as the Django side computes it, for checking what was sent. */
async function expectedDigest(message: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(message));
  return [...new Uint8Array(mac)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** t and v1 of a request's signature header; it verifies against SECRET. */
async function verified(
  request: ReceivedRequest,
  backend: FakeBackend,
): Promise<number> {
  const header = request.headers["x-cronhooks-signature"] ?? "";
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  expect(match, header).not.toBeNull();
  const [, t, v1] = match!;
  // The path the backend sees includes the fake backend's namespace.
  const path = `/${backend.namespace}${request.path}`;
  expect(v1).toBe(
    await expectedDigest(`${t}.${request.method}.${path}.${request.body}`),
  );
  return Number(t);
}

function signingEnv(backend: FakeBackend, overrides: Partial<Env> = {}): Env {
  return testEnv({
    BACKEND_BASE: backend.base,
    SIGNING_SECRET: SECRET,
    RETRY_MAX_ATTEMPTS: "3",
    ...overrides,
  });
}

describe("signature", () => {
  it("is HMAC-SHA256 over <t>.<METHOD>.<path with query>.<body>", async () => {
    // Computed by Python's hmac, as cronhooks verifies it.
    expect(
      await signature(
        SECRET,
        "post",
        "/cron/mop-recent?delta=25",
        "",
        1_700_000_000_999,
      ),
    ).toBe(
      "t=1700000000,v1=2100d9a2fec1f98a7998c3fbb5d09b63aca391e63757eb00c3823c1f9edb1c16",
    );
  });

  it("never signs the same request twice with one t", async () => {
    const now = Date.UTC(2026, 5, 1);
    const first = await signature(SECRET, "POST", "/cron/a", "", now);
    const second = await signature(SECRET, "POST", "/cron/a", "", now);
    const other = await signature(SECRET, "POST", "/cron/b", "", now);

    const t = (header: string) => Number(/^t=(\d+)/.exec(header)![1]);
    expect(t(first)).toBe(now / 1000);
    expect(t(second)).toBe(now / 1000 + 1);
    expect(t(other)).toBe(now / 1000);
  });
});

describe("backendCredentials", () => {
  it("sends the token when no signing secret is set", async () => {
    const settings = readSettings(testEnv());
    expect(settings.signingSecret).toBeNull();
    expect(
      await backendCredentials(settings, "POST", "https://a.test/cron/x"),
    ).toEqual({ Authorization: `Bearer ${TEST_TOKEN}` });
  });

  it("treats an empty SIGNING_SECRET as unset", () => {
    expect(
      readSettings(testEnv({ SIGNING_SECRET: "" })).signingSecret,
    ).toBeNull();
  });
});

describe("a Worker with SIGNING_SECRET", () => {
  it("signs each attempt afresh and never sends the token", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/mop-recent?delta=25": [{ status: 503 }, { status: 503 }, {}],
    });
    const settings = readSettings(signingEnv(backend));
    const logs = captureLogs();

    const { result } = await callJob(
      "mop-recent?delta=25",
      TICK,
      settings,
      jsonLogger(settings.logLevel),
    );

    expect(result.outcome).toBe("ok");
    const requests = await backend.requests();
    expect(requests).toHaveLength(3);
    const stamps = [];
    for (const request of requests) {
      expect(request.headers.authorization).toBeUndefined();
      stamps.push(await verified(request, backend));
    }
    // Retries milliseconds apart still get a t each: each is a new signature.
    expect(new Set(stamps).size).toBe(3);
    expect(JSON.stringify(logs.lines())).not.toContain(SECRET);
  });

  it("signs its polls of a background run", async () => {
    const backend = new FakeBackend();
    await backend.plan({
      "/cron/parties-import": [accepted(backend, RUN_ID)],
      [`/cron/runs/${RUN_ID}`]: [run("running"), run("succeeded")],
    });
    const settings = readSettings(
      signingEnv(backend, {
        POLL_JOBS: "*",
        POLL_INTERVAL: "100",
        POLL_BUDGET: "2000",
      }),
    );
    const logger = jsonLogger(settings.logLevel);
    const { result } = await callJob("parties-import", TICK, settings, logger);

    const followed = await followRun(result, settings, logger);

    expect(followed.final_status).toBe("succeeded");
    const polls = (await backend.requests()).filter((r) => r.method === "GET");
    expect(polls).toHaveLength(2);
    const stamps = await Promise.all(polls.map((p) => verified(p, backend)));
    expect(new Set(stamps).size).toBe(2);
  });
});

describe("a Worker with SIGNING_SECRET serving /health", () => {
  it("signs the backend's detail request for a caller with the token", async () => {
    const backend = new FakeBackend();
    await backend.plan({ "/health": [{ body: { status: "healthy" } }] });

    const { response } = await fetchWorker(
      signingEnv(backend),
      request("GET", "/health", { token: TEST_TOKEN }),
    );

    expect(response.status).toBe(200);
    const [forwarded] = await backend.requests();
    expect(forwarded!.headers.authorization).toBeUndefined();
    await verified(forwarded!, backend);
  });

  it("sends anonymous callers' checks unsigned", async () => {
    const backend = new FakeBackend();
    await backend.plan({ "/health": [{ body: { status: "healthy" } }] });

    await fetchWorker(signingEnv(backend), request("GET", "/health"));

    const [forwarded] = await backend.requests();
    expect(forwarded!.headers["x-cronhooks-signature"]).toBeUndefined();
  });
});
