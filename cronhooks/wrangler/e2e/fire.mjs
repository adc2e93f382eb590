// Fires the bundled Worker's scheduled handler in workerd, for the Django
// end-to-end test (tests/test_worker_e2e.py):
//   node e2e/fire.mjs BUNDLE CRON [CRON ...]
// Bindings come from the environment: BACKEND_BASE, CRONHOOKS_TOKEN,
// SIGNING_SECRET (when set),
// ENVIRONMENT, RETRY_MAX_ATTEMPTS, RETRY_INITIAL_DELAY, REQUEST_TIMEOUT,
// LOG_LEVEL, POLL_JOBS, POLL_INTERVAL, POLL_BUDGET, ALLOWED_ORIGIN
// (wrangler.toml's values when unset), and SCHEDULED_TIME (ms since the
// epoch) for the tick.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { Miniflare } from "miniflare";

const [bundle, ...crons] = process.argv.slice(2);
const toml = readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8");
const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)[1];
const names = [
  "BACKEND_BASE",
  "CRONHOOKS_TOKEN",
  "ENVIRONMENT",
  "RETRY_MAX_ATTEMPTS",
  "RETRY_INITIAL_DELAY",
  "REQUEST_TIMEOUT",
  "LOG_LEVEL",
];
// Polling is off unless the caller asks for it, as in wrangler.toml.
const defaults = {
  POLL_JOBS: "",
  POLL_INTERVAL: "5000",
  POLL_BUDGET: "600000",
  ALLOWED_ORIGIN: "",
};
const bindings = Object.fromEntries([
  ...names.map((name) => [name, process.env[name] ?? ""]),
  ...(process.env.SIGNING_SECRET
    ? [["SIGNING_SECRET", process.env.SIGNING_SECRET]]
    : []),
  ...Object.entries(defaults).map(([name, value]) => [
    name,
    process.env[name] ?? value,
  ]),
]);

const mf = new Miniflare({
  modules: true,
  scriptPath: bundle,
  // The bundle may live outside this directory (a test's temporary folder).
  modulesRoot: dirname(bundle),
  compatibilityDate,
  bindings,
});
try {
  const worker = await mf.getWorker();
  const scheduledTime = new Date(Number(process.env.SCHEDULED_TIME));
  for (const cron of crons) {
    const result = await worker.scheduled({ cron, scheduledTime });
    console.log(JSON.stringify({ event: "e2e_fired", cron, ...result }));
  }
} finally {
  await mf.dispose();
}
