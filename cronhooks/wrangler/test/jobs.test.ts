import { describe, expect, it } from "vitest";
import { allJobs, jobsForCron } from "../src/jobs";

describe("jobsForCron", () => {
  it("gives the jobs of a cron in its environment", () => {
    expect(jobsForCron("production", "33 23 * * *")).toEqual([
      "mop-recent?delta=25",
    ]);
    expect(jobsForCron("staging", "*/15 * * * *")).toEqual(["ee-recent"]);
  });

  it("knows no cron of another environment", () => {
    expect(jobsForCron("development", "*/5 * * * *")).toBeUndefined();
    expect(jobsForCron("production", "*/15 * * * *")).toBeUndefined();
  });

  it("knows no cron of an unknown environment, nor inherited keys", () => {
    expect(jobsForCron("nowhere", "*/5 * * * *")).toBeUndefined();
    expect(jobsForCron("production", "constructor")).toBeUndefined();
  });
});

describe("allJobs", () => {
  it("lists every job of an environment once, in schedule order", () => {
    expect(allJobs("production")).toEqual([
      "ee-recent",
      "parties-import",
      "check-current",
      "mop-recent?delta=25",
    ]);
    expect(allJobs("development")).toEqual(["check-current"]);
    expect(allJobs("nowhere")).toEqual([]);
  });
});
