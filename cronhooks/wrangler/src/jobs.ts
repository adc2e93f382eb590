// Which jobs a cron tick or a manual trigger runs, read from the generated
// SCHEDULES so the Django job registry stays the only place schedules live.
import { SCHEDULES } from "./schedule";

/** The job targets of one cron expression, or undefined if this environment has no such cron. */
export function jobsForCron(
  environment: string,
  cron: string,
): string[] | undefined {
  const crons = SCHEDULES[environment] ?? {};
  return Object.hasOwn(crons, cron) ? crons[cron] : undefined;
}

/** Every job target of an environment once, in schedule order. */
export function allJobs(environment: string): string[] {
  return [...new Set(Object.values(SCHEDULES[environment] ?? {}).flat())];
}
