// The tests run inside workerd, the Workers runtime, with the development
// environment of wrangler.toml; the fake backend runs in Node (globalSetup).
// The runtime's main module is the Worker over the tests' fixture schedule
// (test/fixture-worker.ts), not over the generated src/schedule.ts, whose
// jobs are whatever a project's registry holds.
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { TEST_TOKEN } from "./test/fake-backend-types.ts";

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml", environment: "development" },
      main: "./test/fixture-worker.ts",
      miniflare: {
        bindings: {
          CRONHOOKS_TOKEN: TEST_TOKEN,
          // Requests through the real fetch handler (exports.default) go to
          // the fake backend's "self" namespace.
          BACKEND_BASE: `http://127.0.0.1:${inject("backendPort")}/self`,
          // Small enough that retries and timeouts cost milliseconds.
          RETRY_INITIAL_DELAY: "1",
          REQUEST_TIMEOUT: "200",
        },
      },
    })),
  ],
  test: {
    globalSetup: ["./test/fake-backend.ts", "./test/workerd-log.ts"],
    // The Worker's log lines go to each test (captureLogs), not the output.
    setupFiles: ["./test/log-capture.ts"],
    // Undo every spy (console.log's, fetch's) between tests.
    restoreMocks: true,
  },
});
