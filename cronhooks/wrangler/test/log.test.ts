import { describe, expect, it } from "vitest";
import { jsonLogger } from "../src/log";
import { captureLogs } from "./helpers";

describe("jsonLogger", () => {
  it("writes one JSON object per line with its level", () => {
    const logs = captureLogs();
    jsonLogger("debug").log("info", { event: "result", job: "ee-recent" });
    expect(logs.raw()).toHaveLength(1);
    expect(logs.lines()).toEqual([
      { level: "info", event: "result", job: "ee-recent" },
    ]);
  });

  it("drops lines below its threshold", () => {
    const logs = captureLogs();
    const logger = jsonLogger("warn");
    logger.log("debug", { event: "attempt" });
    logger.log("info", { event: "result" });
    logger.log("warn", { event: "kept" });
    logger.log("error", { event: "also kept" });
    expect(logs.lines().map((line) => line.event)).toEqual([
      "kept",
      "also kept",
    ]);
  });
});
