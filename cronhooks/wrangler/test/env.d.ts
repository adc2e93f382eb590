// Types for what the tests get from "cloudflare:workers": `env` carries the
// development environment's vars of wrangler.toml plus the test token, and
// `exports.default` is src/worker.ts's default export, run by the runtime.
import type { Env as WorkerEnv } from "../src/settings";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      mainModule: typeof import("../src/worker");
    }
  }
}
