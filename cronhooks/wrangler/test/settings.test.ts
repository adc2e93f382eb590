import { describe, expect, it } from "vitest";
import { ConfigError, readSettings, type Env } from "../src/settings";
import { testEnv } from "./helpers";
import { environmentVars } from "./wrangler-toml";

describe("readSettings", () => {
  it("reads the vars as typed settings", () => {
    const settings = readSettings(
      testEnv({
        BACKEND_BASE: "https://example.com/",
        ENVIRONMENT: "production",
        LOG_LEVEL: "warn",
        RETRY_MAX_ATTEMPTS: "3",
        RETRY_INITIAL_DELAY: "1000",
        REQUEST_TIMEOUT: "30000",
        POLL_JOBS: "parties-import, slow,,",
        POLL_INTERVAL: "5000",
        POLL_BUDGET: "600000",
        CRONHOOKS_TOKEN: "t0ken",
      }),
    );
    expect(settings).toEqual({
      backendBase: "https://example.com", // trailing slash dropped
      environment: "production",
      logLevel: "warn",
      maxAttempts: 3,
      initialDelayMs: 1000,
      timeoutMs: 30000,
      pollJobs: new Set(["parties-import", "slow"]),
      pollIntervalMs: 5000,
      pollBudgetMs: 600000,
      token: "t0ken",
    });
  });

  it.each([
    ["", []],
    ["*", ["*"]],
    [" ee-recent ,check-current", ["ee-recent", "check-current"]],
  ])("reads POLL_JOBS=%j as a set of job names", (value, names) => {
    expect(readSettings(testEnv({ POLL_JOBS: value })).pollJobs).toEqual(
      new Set(names),
    );
  });

  it("falls back to info for an unknown LOG_LEVEL", () => {
    expect(readSettings(testEnv({ LOG_LEVEL: "verbose" })).logLevel).toBe(
      "info",
    );
  });

  it.each([
    ["BACKEND_BASE", "example.com"],
    ["ENVIRONMENT", "prod"],
    ["CRONHOOKS_TOKEN", ""],
    ["RETRY_MAX_ATTEMPTS", "0"],
    ["RETRY_MAX_ATTEMPTS", "three"],
    ["RETRY_INITIAL_DELAY", "-1"],
    ["REQUEST_TIMEOUT", "1.5"],
    ["REQUEST_TIMEOUT", ""],
    ["POLL_INTERVAL", "5s"],
    ["POLL_INTERVAL", "99"], // below the 100 ms floor
    ["POLL_INTERVAL", ""],
    ["POLL_BUDGET", "1e6"],
    ["POLL_BUDGET", "-1"],
    ["POLL_JOBS", "mop-recent?delta=25"], // a target, which never matches
  ] as const)("refuses %s=%j", (name, value) => {
    expect(() => readSettings(testEnv({ [name]: value }))).toThrow(
      new RegExp(name),
    );
    expect(() => readSettings(testEnv({ [name]: value }))).toThrow(ConfigError);
  });
});

describe("the vars of wrangler.toml", () => {
  const environments = Object.entries(environmentVars());

  it.each(environments)(
    "%s sets every var, and they make valid settings",
    (_, vars) => {
      const { CRONHOOKS_TOKEN: _secret, ...expected } = testEnv();
      expect(Object.keys(vars).sort()).toEqual(Object.keys(expected).sort());
      const env = { ...vars, CRONHOOKS_TOKEN: "t0ken" } as unknown as Env;
      expect(readSettings(env).pollJobs).toEqual(new Set()); // polls no job
    },
  );

  it("has all three environments", () => {
    expect(environments.map(([name]) => name)).toEqual([
      "production",
      "staging",
      "development",
    ]);
  });
});
