import { describe, expect, it } from "vitest";
import {
  ConfigError,
  readAllowedOrigin,
  readBackendBase,
  readSettings,
  type Env,
} from "../src/settings";
import { testEnv } from "./helpers";
import { environmentVars } from "./wrangler-toml";

describe("readSettings", () => {
  it("reads the vars as typed settings", () => {
    const settings = readSettings(
      testEnv({
        BACKEND_BASE: "https://elections.yoursite.org/",
        ENVIRONMENT: "production",
        LOG_LEVEL: "warn",
        RETRY_MAX_ATTEMPTS: "3",
        RETRY_INITIAL_DELAY: "1000",
        REQUEST_TIMEOUT: "30000",
        POLL_JOBS: "parties-import, slow,,",
        POLL_INTERVAL: "5000",
        POLL_BUDGET: "600000",
        ALLOWED_ORIGIN: "https://admin.yoursite.org",
        CRONHOOKS_TOKEN: "t0ken",
        SIGNING_SECRET: "s1gning",
      }),
    );
    expect(settings).toEqual({
      backendBase: "https://elections.yoursite.org", // trailing slash dropped
      environment: "production",
      logLevel: "warn",
      maxAttempts: 3,
      initialDelayMs: 1000,
      timeoutMs: 30000,
      pollJobs: new Set(["parties-import", "slow"]),
      pollIntervalMs: 5000,
      pollBudgetMs: 600000,
      allowedOrigin: "https://admin.yoursite.org",
      token: "t0ken",
      signingSecret: "s1gning",
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
    ["BACKEND_BASE", "https://example.com"],
    ["ALLOWED_ORIGIN", "*"],
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
  /** An environment's vars as the Worker gets them once deployed as the README says. */
  const deployed = (vars: Record<string, string>) =>
    ({
      ...vars,
      BACKEND_BASE: "https://elections.yoursite.org",
      CRONHOOKS_TOKEN: "t0ken",
    }) as unknown as Env;

  it.each(environments)(
    "%s sets every var, and they make valid settings",
    (_, vars) => {
      const { CRONHOOKS_TOKEN: _secret, ...expected } = testEnv();
      expect(Object.keys(vars).sort()).toEqual(Object.keys(expected).sort());
      const settings = readSettings(deployed(vars));
      expect(settings.pollJobs).toEqual(new Set()); // polls no job
      expect(settings.allowedOrigin).toBeNull(); // no CORS
    },
  );

  it.each(["production", "staging"])(
    "ships %s with a placeholder BACKEND_BASE that the Worker refuses",
    (name) => {
      const vars = environmentVars()[name] ?? {};
      expect(() =>
        readSettings({
          ...deployed(vars),
          BACKEND_BASE: String(vars.BACKEND_BASE),
        }),
      ).toThrow(/^BACKEND_BASE is a placeholder: .*example\.com is reserved/);
    },
  );

  it("points development at the Django app on this machine", () => {
    const vars = environmentVars().development ?? {};
    expect(readBackendBase(vars.BACKEND_BASE)).toBe("http://127.0.0.1:8000");
  });

  it("has all three environments", () => {
    expect(environments.map(([name]) => name)).toEqual([
      "production",
      "staging",
      "development",
    ]);
  });
});

describe("BACKEND_BASE", () => {
  // Each request carries the token: https to a real host, or this machine.
  it.each([
    ["https://elections.yoursite.org", "https://elections.yoursite.org"],
    [
      "https://elections.yoursite.org/api/",
      "https://elections.yoursite.org/api",
    ],
    [
      "https://Elections.YourSite.org:8443//",
      "https://elections.yoursite.org:8443",
    ],
    ["https://yoursite.org:443", "https://yoursite.org"],
    ["https://notexample.com", "https://notexample.com"],
    ["https://example.com.au", "https://example.com.au"], // not example.com
    ["https://example-elections.org", "https://example-elections.org"],
    ["https://api.test-site.net", "https://api.test-site.net"],
    ["https://127.0.0.1", "https://127.0.0.1"],
    ["http://localhost:8000", "http://localhost:8000"],
    ["http://LOCALHOST.:8000", "http://localhost.:8000"],
    ["http://django.localhost:8000", "http://django.localhost:8000"],
    ["http://127.0.0.1:8000/", "http://127.0.0.1:8000"],
    ["http://127.255.255.254", "http://127.255.255.254"],
    ["http://127.1:8000", "http://127.0.0.1:8000"], // the same address, spelt short
    ["http://[::1]:8000", "http://[::1]:8000"],
    ["http://[0:0:0:0:0:0:0:1]", "http://[::1]"],
    [" https://yoursite.org ", "https://yoursite.org"],
  ])("accepts %j as %j", (value, base) => {
    expect(readBackendBase(value)).toBe(base);
  });

  it.each([
    [undefined, /is not set/],
    ["", /is not set/],
    ["   ", /is not set/],
    ["yoursite.org", /is not a URL/],
    ["https://", /is not a URL/],
    ["//yoursite.org", /is not a URL/],
    ["ftp://yoursite.org", /must be an https:\/\/ URL, not ftp:/],
    ["ws://localhost", /must be an https:\/\/ URL, not ws:/],
    ["http://yoursite.org", /http:\/\/ is allowed only for localhost/],
    ["http://10.0.0.5:8000", /http:\/\/ is allowed only for localhost/],
    ["http://192.168.1.10", /http:\/\/ is allowed only for localhost/],
    ["http://[::2]", /http:\/\/ is allowed only for localhost/],
    ["http://[::ffff:127.0.0.1]", /http:\/\/ is allowed only for localhost/],
    ["http://localhost.yoursite.org", /http:\/\/ is allowed only/],
    ["http://127.0.0.1.nip.io", /http:\/\/ is allowed only for localhost/],
    ["http://localhostx", /http:\/\/ is allowed only for localhost/],
    ["https://example.com", /placeholder: example\.com is reserved/],
    ["https://EXAMPLE.COM./", /placeholder: example\.com is reserved/],
    ["https://staging.example.com", /placeholder: staging\.example\.com/],
    ["https://example.net", /placeholder: example\.net/],
    ["https://api.example.net/cron", /placeholder: api\.example\.net/],
    ["https://example.org", /placeholder: example\.org/],
    ["https://www.example.org", /placeholder: www\.example\.org/],
    ["http://example.com", /placeholder: example\.com/],
    ["https://yoursite.example", /placeholder: yoursite\.example/],
    ["https://example", /placeholder: example is reserved/],
    ["https://backend.invalid", /placeholder: backend\.invalid/],
    ["https://django.test", /placeholder: django\.test/],
    ["http://django.test", /placeholder: django\.test/],
    ["https://user:secret-pw@yoursite.org", /must not hold credentials/],
    ["https://yoursite.org/?next=1", /query string or fragment/],
    ["https://yoursite.org/?", /query string or fragment/],
    ["https://yoursite.org/#top", /query string or fragment/],
  ])("refuses %j", (value, message) => {
    let error: unknown;
    try {
      readBackendBase(value);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe("BACKEND_BASE");
    expect((error as ConfigError).message).toMatch(/^BACKEND_BASE /);
    expect((error as ConfigError).message).toMatch(message);
    // The message may be shown on /health: no part of the value that could be secret.
    expect((error as ConfigError).message).not.toMatch(/secret-pw|next=1/);
  });
});

describe("ALLOWED_ORIGIN", () => {
  it.each([
    ["", null],
    [" ", null],
    ["https://admin.yoursite.org", "https://admin.yoursite.org"],
    ["https://admin.yoursite.org/", "https://admin.yoursite.org"],
    ["https://Admin.YourSite.org:443", "https://admin.yoursite.org"],
    ["http://localhost:5173", "http://localhost:5173"],
  ])("reads %j as the origin %j", (value, origin) => {
    expect(readAllowedOrigin(value)).toBe(origin);
  });

  it("is empty when the var is missing, as in a Worker set up before it existed", () => {
    expect(readAllowedOrigin(undefined)).toBeNull();
  });

  it.each([
    "*",
    "null",
    "admin.yoursite.org",
    "https://admin.yoursite.org/page",
    "https://admin.yoursite.org/?x=1",
    "https://admin.yoursite.org#x",
    "https://user:pw@admin.yoursite.org",
    "ftp://admin.yoursite.org",
    "https://a.yoursite.org, https://b.yoursite.org",
  ])("refuses %j: one origin, scheme, host and port only", (value) => {
    expect(() => readAllowedOrigin(value)).toThrow(
      /^ALLOWED_ORIGIN must be one origin/,
    );
  });
});
