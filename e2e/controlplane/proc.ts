// Child processes (etcd, kube-apiserver, kube-controller-manager) that must never outlive us.
// Three layers: stop() terminates them; 'exit'/signal hooks SIGKILL whatever is still tracked; and
// each child is exec'd through `setpriv --pdeathsig SIGKILL` so the kernel kills it even when this
// process dies by SIGKILL or crashes, where no JavaScript runs at all.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";

const live = new Set<number>();
const exitCleanups = new Set<() => void>();
let hooksInstalled = false;
let setprivWorks: boolean | undefined;

function killAllSync(): void {
  for (const pid of live) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
  // After the kills: e.g. removing a data dir while etcd still writes to it would race.
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // best effort while exiting
    }
  }
  exitCleanups.clear();
}

/** Registers synchronous work (e.g. removing a data dir) for when this process exits or is killed
 * by a signal without having stopped its components. Returns the function that unregisters it. */
export function onAbnormalExit(cleanup: () => void): () => void {
  installExitHooks();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      // If someone else listens too (the CLI does), they own the graceful shutdown and will call
      // stop(); the 'exit' hook stays as the backstop. Otherwise behave like the default action:
      // kill the children, then die of the same signal.
      if (process.listenerCount(sig) > 1) return;
      killAllSync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function pdeathsigPrefix(): string[] {
  if (setprivWorks === undefined) {
    const r = spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore" });
    setprivWorks = r.status === 0;
  }
  return setprivWorks ? ["setpriv", "--pdeathsig", "KILL", "--"] : [];
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface ComponentSpec {
  name: string;
  bin: string;
  args: string[];
  /** stdout and stderr are appended here, so a restarted component keeps its earlier log. */
  logFile: string;
  cwd?: string;
  /** Called whenever the set of running PIDs changes (the launcher rewrites its pidfile). */
  onPidChange?: () => void;
  /** Called as soon as the process ends without stop() having been asked for (crash, fatal error,
   * killed by someone else), with how it ended. */
  onUnexpectedExit?: (exit: ExitInfo) => void;
}

export interface ExitInfo {
  /** Exit code, or null when a signal ended it (or it never started). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** "exited with code 1", "killed by SIGKILL" or "failed to start: ..." */
  status: string;
}

/** One long-running binary that can be started, stopped and started again with the same arguments. */
export class Component {
  private child: ChildProcess | undefined;
  private exit: Promise<void> | undefined;
  private exitStatus: string | undefined;
  private stopRequested = false;

  constructor(readonly spec: ComponentSpec) {}

  get pid(): number | undefined {
    return this.child && this.exitStatus === undefined ? this.child.pid : undefined;
  }

  /** Why the process ended, or undefined while it runs (or before it started). */
  get exited(): string | undefined {
    return this.exitStatus;
  }

  start(): void {
    if (this.pid !== undefined) throw new Error(`${this.spec.name} is already running (pid ${this.pid})`);
    installExitHooks();
    const fd = fs.openSync(this.spec.logFile, "a");
    const argv = [...pdeathsigPrefix(), this.spec.bin, ...this.spec.args];
    fs.writeSync(fd, `\n=== ${new Date().toISOString()} starting: ${argv.join(" ")}\n`);
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", fd, fd], cwd: this.spec.cwd });
    } finally {
      fs.closeSync(fd); // the child holds its own copy
    }
    this.child = child;
    this.exitStatus = undefined;
    this.stopRequested = false;
    const pid = child.pid;
    if (pid !== undefined) live.add(pid);
    this.exit = new Promise<void>((resolve) => {
      let ended = false;
      const done = (exit: ExitInfo): void => {
        if (ended) return; // 'error' and 'exit' can both fire
        ended = true;
        if (pid !== undefined) live.delete(pid);
        if (this.child === child) {
          this.exitStatus = exit.status;
          this.spec.onPidChange?.();
          if (!this.stopRequested) this.spec.onUnexpectedExit?.(exit);
        }
        resolve();
      };
      child.on("error", (err) => done({ code: null, signal: null, status: `failed to start: ${err.message}` }));
      child.on("exit", (code, signal) =>
        done({ code, signal, status: signal ? `killed by ${signal}` : `exited with code ${code}` }),
      );
    });
    this.spec.onPidChange?.();
  }

  /** SIGTERM, then SIGKILL after timeoutMs; resolves once the process is gone. Idempotent. */
  async stop(timeoutMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || this.exitStatus !== undefined || !this.exit) return;
    this.stopRequested = true;
    child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.exit, killed]);
    clearTimeout(timer);
    await this.exit;
  }

  /** The last lines of the component's log, for error messages. */
  logTail(lines = 25): string {
    try {
      const text = fs.readFileSync(this.spec.logFile, "utf8");
      return text.trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}
