// Test helper: runs the real openssl CLI on files in a temp directory, as an independent implementation to
// cross-check ours against. Test-only; nothing in the agent imports it.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface OpensslResult {
  status: number;
  stdout: string;
  stderr: string;
  /** stdout followed by stderr: openssl reports verify results on either, depending on the command. */
  output: string;
}

export class OpensslWorkspace {
  readonly dir = mkdtempSync(join(tmpdir(), "pki-openssl-"));

  /** Writes a file into the workspace and returns its path. */
  file(name: string, content: string | Uint8Array): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  read(name: string): string {
    return readFileSync(join(this.dir, name), "utf8");
  }

  readBytes(name: string): Buffer {
    return readFileSync(join(this.dir, name));
  }

  run(args: string[], input?: string | Uint8Array): OpensslResult {
    const result = spawnSync("openssl", args, { cwd: this.dir, input, encoding: "buffer", timeout: 30_000 });
    if (result.error) throw result.error;
    const stdout = result.stdout.toString("utf8");
    const stderr = result.stderr.toString("utf8");
    return { status: result.status ?? -1, stdout, stderr, output: `${stdout}${stderr}` };
  }

  /** Runs openssl and fails the test with openssl's own explanation if it exits non-zero. */
  ok(args: string[], input?: string | Uint8Array): OpensslResult {
    const result = this.run(args, input);
    if (result.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${result.status}):\n${result.output}`);
    return result;
  }

  /**
   * Hex SHA-256 of the SubjectPublicKeyInfo that an openssl command prints (PEM "PUBLIC KEY" or DER), to
   * compare with publicKeyFingerprint.
   */
  publicKeyFingerprintOf(args: string[]): string {
    const result = spawnSync("openssl", args, { cwd: this.dir, encoding: "buffer" });
    if (result.status !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${result.stderr.toString()}`);
    const text = result.stdout.toString("latin1");
    const pem = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(text);
    const der = pem ? Buffer.from((pem[1] as string).replace(/\s+/g, ""), "base64") : result.stdout;
    return createHash("sha256").update(der).digest("hex");
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Asserts that an error's text shows none of a PEM: not the whole, not a line, not any 16-character run of its body. */
export function expectNoKeyMaterial(error: unknown, pem: string): void {
  const texts = [String(error), (error as Error)?.stack ?? "", JSON.stringify(error) ?? ""];
  if ((error as { cause?: unknown })?.cause !== undefined) throw new Error("error carries a cause that may hold key material");
  const body = pem.replace(/-----[A-Z0-9 ]+-----/g, "").replace(/\s+/g, "");
  const derHex = Buffer.from(body, "base64").toString("hex");
  for (const text of texts) {
    if (text.includes(pem.trim())) throw new Error("error text contains the PEM");
    for (const [material, window] of [
      [body, 16],
      [derHex, 16],
    ] as const) {
      for (let i = 0; i + window <= material.length; i += 4) {
        const chunk = material.slice(i, i + window);
        if (text.includes(chunk) || text.toLowerCase().includes(chunk.toLowerCase())) {
          throw new Error(`error text contains key material: ${JSON.stringify(text.slice(0, 200))}`);
        }
      }
    }
  }
}
