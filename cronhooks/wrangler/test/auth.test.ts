import { describe, expect, it } from "vitest";
import { bearerToken, isAuthorized, tokensMatch } from "../src/auth";

function withAuthorization(value?: string): Request {
  const headers: Record<string, string> =
    value === undefined ? {} : { Authorization: value };
  return new Request("https://worker.test/trigger", { headers });
}

describe("bearerToken", () => {
  it("reads the token of a Bearer header, whatever the scheme's case", () => {
    expect(bearerToken(withAuthorization("Bearer abc.123"))).toBe("abc.123");
    expect(bearerToken(withAuthorization("bearer abc"))).toBe("abc");
  });

  it.each([undefined, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b"])(
    "finds none in %j",
    (value) => {
      expect(bearerToken(withAuthorization(value))).toBeNull();
    },
  );
});

describe("tokensMatch", () => {
  it("matches only the same token", async () => {
    expect(await tokensMatch("s3cret", "s3cret")).toBe(true);
    expect(await tokensMatch("s3cret", "s3creT")).toBe(false);
    expect(await tokensMatch("s3cret", "s3cret-longer")).toBe(false);
    expect(await tokensMatch("", "s3cret")).toBe(false);
  });
});

describe("isAuthorized", () => {
  it("accepts the expected bearer token and nothing else", async () => {
    expect(
      await isAuthorized(withAuthorization("Bearer s3cret"), "s3cret"),
    ).toBe(true);
    expect(
      await isAuthorized(withAuthorization("Bearer wrong"), "s3cret"),
    ).toBe(false);
    expect(await isAuthorized(withAuthorization(), "s3cret")).toBe(false);
  });

  it("never accepts anyone when no token is configured", async () => {
    expect(await isAuthorized(withAuthorization("Bearer x"), "")).toBe(false);
  });
});
