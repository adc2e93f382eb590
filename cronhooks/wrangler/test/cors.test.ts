// CORS on the Worker's own endpoints, through its fetch handler: one allowed
// origin, set with ALLOWED_ORIGIN, and none by default.
import { describe, expect, it } from "vitest";
import type { Env } from "../src/settings";
import { TEST_TOKEN } from "./fake-backend-types";
import {
  accepted,
  callWorker,
  captureLogs,
  FakeBackend,
  request,
  testEnv,
} from "./helpers";

const ADMIN = "https://admin.yoursite.org";
const FOREIGN = "https://evil.yoursite.org.attacker.net";

/** A browser's preflight for `method` on `path` from `origin`. */
function preflight(path: string, origin: string, method: string): Request {
  return request("OPTIONS", path, {
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": method,
      "Access-Control-Request-Headers": "authorization,content-type",
    },
  });
}

/** The answer's CORS headers (and Vary), by lower-case name. */
function corsOf(response: Response): Record<string, string> {
  return Object.fromEntries(
    [...response.headers].filter(
      ([name]) => name.startsWith("access-control-") || name === "vary",
    ),
  );
}

/** An Env whose backend is `backend`, with ALLOWED_ORIGIN set to `origin`. */
function envFor(backend: FakeBackend, origin: string, more: Partial<Env> = {}) {
  return testEnv({
    BACKEND_BASE: backend.base,
    ALLOWED_ORIGIN: origin,
    ...more,
  });
}

describe("without ALLOWED_ORIGIN (the default)", () => {
  it.each([
    ["/health", "GET, OPTIONS"],
    ["/trigger", "POST, OPTIONS"],
  ])(
    "answers a preflight of %s with 204 and Allow: %s, and no CORS headers",
    async (path, allow) => {
      const backend = new FakeBackend();
      const response = await callWorker(
        envFor(backend, ""),
        preflight(path, ADMIN, "POST"),
      );
      expect(response.status).toBe(204);
      expect(response.headers.get("Allow")).toBe(allow);
      expect(corsOf(response)).toEqual({});
      expect(await response.text()).toBe("");
      expect(await backend.requests()).toEqual([]);
    },
  );

  it("adds no CORS headers to the answers, whoever asks", async () => {
    const backend = new FakeBackend();
    const env = envFor(backend, "");
    const health = await callWorker(
      env,
      request("GET", "/health", { headers: { Origin: ADMIN } }),
    );
    const trigger = await callWorker(
      env,
      request("POST", "/trigger", {
        token: TEST_TOKEN,
        headers: { Origin: ADMIN },
      }),
    );
    expect([health.status, trigger.status]).toEqual([200, 200]);
    expect(corsOf(health)).toEqual({});
    expect(corsOf(trigger)).toEqual({});
  });
});

describe("with ALLOWED_ORIGIN", () => {
  it.each([
    ["/health", "GET"],
    ["/trigger", "POST"],
  ])(
    "answers the allowed origin's preflight of %s with 204 and what it may send",
    async (path, method) => {
      const backend = new FakeBackend();
      const response = await callWorker(
        envFor(backend, ADMIN),
        preflight(path, ADMIN, method),
      );
      expect(response.status).toBe(204);
      expect(response.headers.get("Allow")).toBe(`${method}, OPTIONS`);
      expect(corsOf(response)).toEqual({
        "access-control-allow-origin": ADMIN,
        "access-control-allow-methods": `${method}, OPTIONS`,
        "access-control-allow-headers": "Authorization, Content-Type",
        "access-control-max-age": "600",
        vary: "Origin",
      });
      // A preflight is answered by the Worker alone.
      expect(await backend.requests()).toEqual([]);
    },
  );

  it.each([
    ["a foreign origin", FOREIGN],
    ["the allowed host over http", "http://admin.yoursite.org"],
    ["the allowed host on another port", `${ADMIN}:8443`],
    ["a subdomain of the allowed origin", "https://x.admin.yoursite.org"],
    ["an opaque origin", "null"],
  ])(
    "refuses %s's preflight: no Access-Control-* header at all",
    async (_, origin) => {
      const backend = new FakeBackend();
      const response = await callWorker(
        envFor(backend, ADMIN),
        preflight("/trigger", origin, "POST"),
      );
      expect(response.status).toBe(204);
      expect(corsOf(response)).toEqual({ vary: "Origin" });
    },
  );

  it("lets the allowed origin read /health and /trigger's answers", async () => {
    const backend = new FakeBackend();
    const env = envFor(backend, ADMIN);
    const origin = { Origin: ADMIN };
    const answers = [
      await callWorker(env, request("GET", "/health", { headers: origin })),
      await callWorker(
        env,
        request("POST", "/trigger?job=check-current", {
          token: TEST_TOKEN,
          headers: origin,
        }),
      ),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    for (const response of answers) {
      expect(corsOf(response)).toEqual({
        "access-control-allow-origin": ADMIN,
        vary: "Origin",
      });
    }
  });

  it("lets it read refusals too: 401, 405 and a misconfigured 503", async () => {
    const backend = new FakeBackend();
    const logs = captureLogs();
    const origin = { Origin: ADMIN };
    const unauthorized = await callWorker(
      envFor(backend, ADMIN),
      request("POST", "/trigger", { token: "wrong", headers: origin }),
    );
    const wrongMethod = await callWorker(
      envFor(backend, ADMIN),
      request("PUT", "/trigger", { headers: origin }),
    );
    const placeholder = envFor(backend, ADMIN, {
      BACKEND_BASE: "https://example.com",
    });
    const misconfigured = await callWorker(
      placeholder,
      request("GET", "/health", { headers: origin }),
    );
    // The page's preflight gets through, so that it can read why.
    const options = await callWorker(
      placeholder,
      preflight("/health", ADMIN, "GET"),
    );
    expect(options.headers.get("Access-Control-Allow-Origin")).toBe(ADMIN);
    expect(
      [unauthorized, wrongMethod, misconfigured].map((r) => [
        r.status,
        r.headers.get("Access-Control-Allow-Origin"),
      ]),
    ).toEqual([
      [401, ADMIN],
      [405, ADMIN],
      [503, ADMIN],
    ]);
    expect(wrongMethod.headers.get("Allow")).toBe("POST, OPTIONS");
    expect(logs.lines().map((line) => line.event)).toEqual([
      "unauthorized",
      "misconfigured",
    ]);
    expect(await backend.requests()).toEqual([]);
  });

  it("passes a 202 through with the CORS headers", async () => {
    const backend = new FakeBackend();
    const reply = accepted(backend, "3d6e9f12-4a5b-4c7d-8e9f-a0b1c2d3e4f5");
    await backend.plan({ "/cron/parties-import": [reply] });
    const response = await callWorker(
      envFor(backend, ADMIN, { ENVIRONMENT: "production" }),
      request("POST", "/trigger?job=parties-import", {
        token: TEST_TOKEN,
        headers: { Origin: ADMIN },
      }),
    );
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual(reply.body);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe(ADMIN);
  });

  it("gives a foreign origin's request no Allow-Origin, only Vary", async () => {
    const backend = new FakeBackend();
    const response = await callWorker(
      envFor(backend, ADMIN),
      request("GET", "/health", { headers: { Origin: FOREIGN } }),
    );
    // The Worker still answers (CORS is the browser's to enforce), but no
    // browser will hand this answer to the foreign page.
    expect(response.status).toBe(200);
    expect(corsOf(response)).toEqual({ vary: "Origin" });
  });

  it("matches the origin as written in wrangler.toml, case and trailing slash aside", async () => {
    const backend = new FakeBackend();
    const response = await callWorker(
      envFor(backend, "https://Admin.YourSite.org/"),
      preflight("/health", ADMIN, "GET"),
    );
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe(ADMIN);
  });

  it("adds nothing to the answers of other paths", async () => {
    const response = await callWorker(
      testEnv({ ALLOWED_ORIGIN: ADMIN }),
      request("OPTIONS", "/cron/ee-recent", { headers: { Origin: ADMIN } }),
    );
    expect(response.status).toBe(404);
    expect(corsOf(response)).toEqual({});
  });
});

describe("an ALLOWED_ORIGIN the Worker refuses", () => {
  it.each(["*", "https://admin.yoursite.org/page", "admin.yoursite.org"])(
    "%j makes the Worker misconfigured, with no CORS headers",
    async (value) => {
      const backend = new FakeBackend();
      const logs = captureLogs();
      const env = envFor(backend, value);
      const health = await callWorker(
        env,
        request("GET", "/health", { headers: { Origin: ADMIN } }),
      );
      const options = await callWorker(env, preflight("/health", ADMIN, "GET"));
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({
        status: "misconfigured",
        setting: "ALLOWED_ORIGIN",
      });
      expect(corsOf(health)).toEqual({});
      expect(corsOf(options)).toEqual({});
      expect(logs.lines()).toEqual([
        expect.objectContaining({ setting: "ALLOWED_ORIGIN" }),
      ]);
      expect(await backend.requests()).toEqual([]);
    },
  );
});
