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

/** A CA made by the openssl CLI: an issuer independent of our own code. */
export interface OpensslCa {
  certPem: string;
  certPath: string;
  keyPath: string;
}

export const OPENSSL_ROOT_EXTENSIONS = [
  "basicConstraints = critical,CA:TRUE",
  "keyUsage = critical,keyCertSign,cRLSign",
  "subjectKeyIdentifier = hash",
];

export const OPENSSL_INTERMEDIATE_EXTENSIONS = [
  "basicConstraints = critical,CA:TRUE",
  "keyUsage = critical,keyCertSign",
  "subjectKeyIdentifier = hash",
  "authorityKeyIdentifier = keyid",
];

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

  /** A self-signed root; `key` is an openssl -newkey argument such as "rsa:2048" or "ec:P-256". */
  makeRoot(
    name: string,
    options: { subject?: string; key?: string; extensions?: string[]; days?: number } = {},
  ): OpensslCa {
    const [algorithm, size] = (options.key ?? "ec:P-256").split(":") as [string, string];
    const newKey = algorithm === "ec" ? ["-newkey", "ec", "-pkeyopt", `ec_paramgen_curve:${size}`] : ["-newkey", `rsa:${size}`];
    const config = this.file(`${name}.cnf`, `[req]\ndistinguished_name = dn\n[dn]\n[ext]\n${(options.extensions ?? OPENSSL_ROOT_EXTENSIONS).join("\n")}\n`);
    const keyPath = `${this.dir}/${name}.key`;
    const certPath = `${this.dir}/${name}.pem`;
    this.ok([
      "req", "-x509", ...newKey, "-nodes", "-keyout", keyPath, "-out", certPath,
      "-subj", options.subject ?? "/CN=openssl test root", "-days", String(options.days ?? 10),
      "-config", config, "-extensions", "ext",
    ]);
    return { certPem: readFileSync(certPath, "utf8"), certPath, keyPath };
  }

  /** `openssl x509 -req`: signs a CSR with exactly the given extensions (the subject is copied from the CSR). */
  signCsr(
    name: string,
    csrPem: string,
    ca: OpensslCa,
    options: { extensions?: string[]; days?: number; digest?: string } = {},
  ): string {
    const csrPath = this.file(`${name}.csr.pem`, csrPem);
    const extfile = this.file(`${name}.ext.cnf`, `[ext]\n${(options.extensions ?? OPENSSL_INTERMEDIATE_EXTENSIONS).join("\n")}\n`);
    const certPath = `${this.dir}/${name}.pem`;
    const serial = `0x${Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(15))).toString("hex")}`;
    this.ok([
      "x509", "-req", "-in", csrPath, "-CA", ca.certPath, "-CAkey", ca.keyPath, "-days", String(options.days ?? 5),
      "-extfile", extfile, "-extensions", "ext", "-set_serial", serial, `-${options.digest ?? "sha256"}`, "-out", certPath,
    ]);
    return readFileSync(certPath, "utf8");
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
