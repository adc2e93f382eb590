// One JSON object per line on console.log, which is what `wrangler tail` and
// Workers Logs index. Callers pass fields, never the token: nothing here could
// redact it reliably, so it must not get this far.
import { LOG_LEVELS, type LogLevel } from "./settings";

export type LogFields = Record<string, unknown>;

export interface Logger {
  log(level: LogLevel, fields: LogFields): void;
}

export function jsonLogger(threshold: LogLevel): Logger {
  const minimum = LOG_LEVELS.indexOf(threshold);
  return {
    log(level, fields) {
      if (LOG_LEVELS.indexOf(level) < minimum) return;
      console.log(JSON.stringify({ level, ...fields }));
    },
  };
}
