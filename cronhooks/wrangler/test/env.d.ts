// Types for what the tests get from "cloudflare:workers": `env` carries the
// development environment's vars of wrangler.toml plus the test token, and
// `exports.default` is test/fixture-worker.ts's default export (src/worker.ts's
// handlers over the tests' fixture schedule), run by the runtime.
import type { Env as WorkerEnv } from "../src/settings";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      mainModule: typeof import("./fixture-worker");
    }
  }
}
