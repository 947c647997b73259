// One line per fault for the closing note: what broke, how long until the invariant held again,
// and what the invariant counted. Printed, and appended to $DEVICEPASS_FAULT_REPORT (JSON lines).
import { appendFileSync } from "node:fs";

export function report(fault: string, numbers: Record<string, unknown>): void {
  const line = JSON.stringify({ fault, ...numbers });
  console.log(`[fault] ${line}`);
  const file = process.env.DEVICEPASS_FAULT_REPORT;
  if (file) appendFileSync(file, `${line}\n`);
}
