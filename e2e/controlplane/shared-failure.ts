// The shared control plane's failure report, readable without Jest (the demo and benchmarks import
// the e2e harness too): the global setup writes it to a file when a component exits.
import * as fs from "node:fs";
import { FAILURE_FILE_ENV } from "./testenv-names";

/** The report of a shared control plane component that exited during this run (its name, how it
 * ended and its log tail), or undefined while all of them run. */
export function sharedControlPlaneFailure(): string | undefined {
  const file = process.env[FAILURE_FILE_ENV];
  if (!file) return undefined;
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined; // no report: nothing exited
  }
}

/** Throws the report of a shared control plane component that exited, if one did. */
export function assertSharedControlPlaneRunning(): void {
  const report = sharedControlPlaneFailure();
  if (report !== undefined) throw new Error(`the shared control plane is broken: ${report}`);
}
