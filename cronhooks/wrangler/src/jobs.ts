// Which jobs a cron tick or a manual trigger runs. The table is handed in
// (createWorker in worker.ts) rather than imported: the deployed Worker runs
// the generated src/schedule.ts, while the tests run its behaviour against a
// fixture of their own, so they pass whatever a project's registry holds.

/** environment -> cron -> job targets, as src/schedule.ts declares them. */
export type Schedules = Readonly<
  Record<string, Readonly<Record<string, readonly string[]>>>
>;

/** The job targets of one cron expression, or undefined if this environment has no such cron. */
export function jobsForCron(
  schedules: Schedules,
  environment: string,
  cron: string,
): readonly string[] | undefined {
  const crons = cronsOf(schedules, environment);
  return Object.hasOwn(crons, cron) ? crons[cron] : undefined;
}

/** Every job target of an environment once, in schedule order. */
export function allJobs(schedules: Schedules, environment: string): string[] {
  return [...new Set(Object.values(cronsOf(schedules, environment)).flat())];
}

/** An environment's crons; none for an unknown one, "constructor" included. */
function cronsOf(
  schedules: Schedules,
  environment: string,
): Readonly<Record<string, readonly string[]>> {
  return (
    (Object.hasOwn(schedules, environment) && schedules[environment]) || {}
  );
}
