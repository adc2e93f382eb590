// Keeps the Worker's log lines off the test output, and makes tests account
// for the lines that matter: every console.log of a test goes to testLog.
// A test that logs a warn or error line fails unless it reads its lines with
// captureLogs() (and so can assert on them): a warning nobody expected is a
// bug, not noise. A failing test prints everything it logged.
import { afterEach, beforeEach, vi } from "vitest";
import { testLog } from "./helpers";

const print = console.log.bind(console);
const LOUD = /^\{"level":"(warn|error)"/;

beforeEach((context) => {
  testLog.lines = [];
  testLog.read = false;
  vi.spyOn(console, "log").mockImplementation((line: unknown) => {
    testLog.lines.push(String(line));
  });
  const lines = testLog.lines;
  context.onTestFailed(() => {
    for (const line of lines) print(line);
  });
});

afterEach(() => {
  const loud = testLog.lines.filter((line) => LOUD.test(line));
  if (!testLog.read && loud.length > 0) {
    throw new Error(
      `the Worker logged ${loud.length} warn/error line(s) this test does not ` +
        `read with captureLogs() and assert on:\n${loud.join("\n")}`,
    );
  }
});
