// Shared by the fake backend (Node) and the tests (workerd).

/** How the fake backend answers one request. */
export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer only after this many ms. */
  delay_ms?: number;
  /** Never answer, so the caller's timeout has to fire. */
  hang?: boolean;
  /** Drop the connection without answering: a network error for the caller. */
  reset?: boolean;
}

/** One request as the fake backend received it; header names are lower case. */
export interface ReceivedRequest {
  method: string;
  /** The path after the namespace, with its query string: "/cron/mop-recent?delta=25". */
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Node's clock, in ms: real time, unlike Date.now() inside workerd. */
  received_at: number;
}

/** The CRONHOOKS_TOKEN secret the tests give the Worker (see vitest.config.ts). */
export const TEST_TOKEN = "test-token-not-a-secret-0123456789";

declare module "vitest" {
  export interface ProvidedContext {
    /** The fake backend's port on 127.0.0.1. */
    backendPort: number;
    /** Another fake backend's port on 127.0.0.1: a foreign origin. */
    foreignPort: number;
    /** A port on 127.0.0.1 nothing listens on. */
    closedPort: number;
  }
}
