// Each control plane writes <dataDir>/pids.json naming its owner (this process) and its components.
// If the owner ever dies without cleaning up (SIGKILL, OOM), the next start removes the leftovers:
// kills components still running from that directory and deletes it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isAlive } from "./proc";

export const DATA_DIR_PREFIX = "cert-agent-cp-";
const PIDFILE = "pids.json";

export interface PidfileContent {
  owner: number;
  components: Record<string, number | undefined>;
}

export function writePidfile(dataDir: string, components: Record<string, number | undefined>): void {
  const content: PidfileContent = { owner: process.pid, components };
  try {
    const tmp = path.join(dataDir, `${PIDFILE}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(content, null, 2) + "\n");
    fs.renameSync(tmp, path.join(dataDir, PIDFILE));
  } catch {
    // The data dir is being removed by stop(); nothing left to record.
  }
}

/** Cleans up data dirs in os.tmpdir() whose owner process is gone. Best effort, never throws. */
export function sweepStaleDataDirs(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith(DATA_DIR_PREFIX));
  } catch {
    return;
  }
  for (const entry of entries) {
    const dir = path.join(os.tmpdir(), entry);
    try {
      const content = JSON.parse(fs.readFileSync(path.join(dir, PIDFILE), "utf8")) as PidfileContent;
      if (isAlive(content.owner)) continue;
      for (const pid of Object.values(content.components)) {
        // Only kill a PID still running out of this directory: PIDs get reused.
        if (pid !== undefined && isAlive(pid) && cmdline(pid).includes(dir)) process.kill(pid, "SIGKILL");
      }
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // No (readable) pidfile: maybe a control plane still being created. Leave it alone.
    }
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}
