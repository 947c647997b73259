// Structured JSON logging (pino). Secret-bearing fields are redacted wherever they appear.
import { pino, type Logger } from "pino";

export type { Logger };

export const redactedPaths = ["password", "*.password", "data", "*.data", "stringData", "*.stringData"];

export function createLogger(
  level = process.env.LOG_LEVEL ?? "info",
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    { level, base: { app: "devicepass" }, redact: { paths: redactedPaths, censor: "[redacted]" } },
    destination,
  );
}
