// Proving the Worker's requests to the backend: with SIGNING_SECRET set, each
// request is signed (X-Cronhooks-Signature, HMAC-SHA256 with Web Crypto) and
// no token is sent; without it, the bearer token goes along as before. A
// signature is bound to one request and one moment, and the backend accepts
// each once, so one seen in a log or a proxy is worth nothing.
import type { Settings } from "./settings";

export const SIGNATURE_HEADER = "X-Cronhooks-Signature";

/**
 * The last `t` signed for each request (method, path and body), in this
 * isolate. The backend accepts a signature once, and two identical requests
 * in one second would have the same one: a retry a few ms after a 503, a
 * poll of the same run. Each gets a later `t` instead, at most a few seconds
 * ahead of the clock, well within the backend's tolerance.
 */
const lastSigned = new Map<string, number>();

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * `t=<unix seconds>,v1=<hex>`: v1 is HMAC-SHA256 with `secret` over
 * `<t>.<METHOD>.<path with query>.<body>`, as cronhooks' SignatureAuthenticator
 * verifies it. A fresh `t` on every call, never one used for the same request.
 */
export async function signature(
  secret: string,
  method: string,
  pathWithQuery: string,
  body = "",
  now: number = Date.now(),
): Promise<string> {
  const request = `${method} ${pathWithQuery} ${body}`;
  const t = Math.max(
    Math.floor(now / 1000),
    (lastSigned.get(request) ?? 0) + 1,
  );
  lastSigned.set(request, t);
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    encoder.encode(`${t}.${method.toUpperCase()}.${pathWithQuery}.${body}`),
  );
  return `t=${t},v1=${hex(mac)}`;
}

/**
 * The header that proves a request to the backend is the Worker's: a fresh
 * signature when SIGNING_SECRET is set, else the bearer token. Called for
 * every attempt, so each retry is signed anew.
 */
export async function backendCredentials(
  settings: Pick<Settings, "token" | "signingSecret">,
  method: string,
  url: string,
  body = "",
): Promise<Record<string, string>> {
  if (settings.signingSecret === null) {
    return { Authorization: `Bearer ${settings.token}` };
  }
  const { pathname, search } = new URL(url);
  return {
    [SIGNATURE_HEADER]: await signature(
      settings.signingSecret,
      method,
      `${pathname}${search}`,
      body,
    ),
  };
}
