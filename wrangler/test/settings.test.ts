import { describe, expect, it } from "vitest";
import { ConfigError, readSettings } from "../src/settings";
import { testEnv } from "./helpers";

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
      token: "t0ken",
    });
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
  ] as const)("refuses %s=%j", (name, value) => {
    expect(() => readSettings(testEnv({ [name]: value }))).toThrow(
      new RegExp(name),
    );
    expect(() => readSettings(testEnv({ [name]: value }))).toThrow(ConfigError);
  });
});
