// The Worker as its behaviour tests run it: src/worker.ts's handlers over a
// schedule of the tests' own. The generated src/schedule.ts holds whatever
// jobs a project's registry does (`manage.py cronhooks wrangler init` writes
// it), so no behaviour test may depend on it; schedule.test.ts checks it
// against wrangler.toml instead. vitest.config.ts makes this module the
// runtime's main module too, so exports.default runs it.
//
// Its crons differ from the example project's on purpose: a test that reads
// the generated schedule by mistake fails in this repository, not only in a
// project with other jobs.
import type { Schedules } from "../src/jobs";
import { createWorker } from "../src/worker";

export const SCHEDULES = {
  production: {
    "*/10 * * * *": ["ee-recent"],
    "15 3 * * *": ["parties-import"],
    "45 23 * * *": ["check-current"],
    "50 23 * * *": ["mop-recent?delta=25"],
  },
  staging: {
    "*/20 * * * *": ["ee-recent"],
    "15 4 * * *": ["parties-import"],
    // Two jobs on one cron, as a registry may schedule them.
    "45 0 * * *": ["check-current", "mop-recent?delta=25"],
  },
  development: {
    "0 */4 * * *": ["check-current"],
  },
} as const satisfies Schedules;

export default createWorker(SCHEDULES);
