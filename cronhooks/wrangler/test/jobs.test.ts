import { describe, expect, it } from "vitest";
import { allJobs, jobsForCron } from "../src/jobs";
import { SCHEDULES } from "./fixture-worker";

describe("jobsForCron", () => {
  it("gives the jobs of a cron in its environment", () => {
    expect(jobsForCron(SCHEDULES, "production", "50 23 * * *")).toEqual([
      "mop-recent?delta=25",
    ]);
    expect(jobsForCron(SCHEDULES, "staging", "*/20 * * * *")).toEqual([
      "ee-recent",
    ]);
    expect(jobsForCron(SCHEDULES, "staging", "45 0 * * *")).toEqual([
      "check-current",
      "mop-recent?delta=25",
    ]);
  });

  it("knows no cron of another environment", () => {
    expect(
      jobsForCron(SCHEDULES, "development", "*/10 * * * *"),
    ).toBeUndefined();
    expect(
      jobsForCron(SCHEDULES, "production", "*/20 * * * *"),
    ).toBeUndefined();
  });

  it("knows no cron of an unknown environment, nor inherited keys", () => {
    expect(jobsForCron(SCHEDULES, "nowhere", "*/10 * * * *")).toBeUndefined();
    expect(jobsForCron(SCHEDULES, "production", "constructor")).toBeUndefined();
    expect(
      jobsForCron(SCHEDULES, "constructor", "constructor"),
    ).toBeUndefined();
  });
});

describe("allJobs", () => {
  it("lists every job of an environment once, in schedule order", () => {
    expect(allJobs(SCHEDULES, "production")).toEqual([
      "ee-recent",
      "parties-import",
      "check-current",
      "mop-recent?delta=25",
    ]);
    expect(allJobs(SCHEDULES, "development")).toEqual(["check-current"]);
    expect(allJobs(SCHEDULES, "nowhere")).toEqual([]);
    expect(allJobs(SCHEDULES, "constructor")).toEqual([]);
  });

  it("lists a job scheduled on several crons once", () => {
    const twice = {
      production: { "0 1 * * *": ["a", "b"], "0 2 * * *": ["b"] },
    };
    expect(allJobs(twice, "production")).toEqual(["a", "b"]);
  });
});
