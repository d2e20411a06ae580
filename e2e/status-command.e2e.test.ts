// `cert-agent status` as its BUILT executable (node dist/agent/main.js status ..., `npm run build`
// first) against the real API server: a certificate issued by the real agent and the reference issuer,
// a FAILED one, an expired one written by hand, and the exit codes, -o json/yaml, the kubeconfig
// context's namespace, API errors. No output may ever show key material.
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { BOUNCE_PROGRESS_ANNOTATION, KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { DEFAULT_RENEW_BEFORE, renewalTime } from "../agent/renewal";
import type { StatusRow } from "../agent/status/rows";
import { ourTargetSecret, signedBundle } from "../agent/status/testing";
import { podBounceDirective } from "../shared/api/builders";
import { GROUP, type PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { SecretClient } from "../shared/kube/secrets";
import { describeCertificate } from "../shared/pki";
import { expectNoKeyMaterial } from "../shared/pki/testing/openssl";
import { describeWithControlPlane, sharedKubeConfig, sharedKubeconfigPath } from "./controlplane/testenv";
import {
  type Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  newIssuedCertificate,
  REPO_ROOT,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";
import { createRootCa } from "./issuer/sign";

jest.setTimeout(180_000);

const MAIN = join(REPO_ROOT, "dist", "agent", "main.js");
const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };
const DAY = 86_400_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every private key PEM written in this file, and every output seen: checked together at the end. */
const privateKeys: string[] = [];
const outputs: string[] = [];

/** The executable, asynchronously (the in-process agent keeps running meanwhile), with a clean environment. */
function status(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, "status", ...args], { env: { PATH: process.env.PATH, HOME: tmpdir(), ...env }, timeout: 90_000, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return reject(error);
        outputs.push(stdout, stderr);
        resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
      });
  });
}

/** The table's rows (header first), split on kubectl's three-space gaps. */
const table = (stdout: string) => stdout.trimEnd().split("\n").map((line) => line.split(/ {3,}/));

describeWithControlPlane("cert-agent status (the built executable, on the real API server)", () => {
  let c: Clients;
  let kubeconfig: string;
  let dir: string;
  let issuedNs: string;
  let handNs: string;
  const running: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    if (!existsSync(join(REPO_ROOT, "dist", "agent", "status", "command.js"))) {
      throw new Error(`${MAIN} has no status command: run npm run build first`);
    }
    c = clients(sharedKubeConfig());
    kubeconfig = sharedKubeconfigPath();
    dir = mkdtempSync(join(tmpdir(), "status-e2e-"));
  });

  afterAll(async () => {
    while (running.length) await running.pop()!.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A copy of the admin kubeconfig with changes to its one context or user. */
  function kubeconfigWith(name: string, change: (doc: { contexts: { context: Record<string, unknown> }[]; users: { user: Record<string, unknown> }[]; clusters: { cluster: Record<string, unknown> }[] }) => void): string {
    const doc = parseYaml(readFileSync(kubeconfig, "utf8"));
    change(doc);
    const file = join(dir, name);
    writeFileSync(file, stringifyYaml(doc), { mode: 0o600 });
    return file;
  }

  it("a FINISHED certificate issued by the real agent and issuer: exit 0 and its row, as a table, JSON and YAML", async () => {
    issuedNs = await createNamespace(c, "status-issued");
    await createSigningSecret(c, issuedNs);
    running.push(await startIssuer(c.kc, issuedNs));
    running.push(await startInProcessAgent(c.kc, ["--namespace", issuedNs]));
    await c.issued.create(issuedNs, newIssuedCertificate(issuedNs, "good", { target: { name: "cacerts-good", namespace: issuedNs }, annotations: P256 }));
    await waitForState(c, issuedNs, "good", "FINISHED");
    const data = decodeSecret((await getSecretOrUndefined(c, issuedNs, "cacerts-good"))!);
    privateKeys.push(data["ca-key.pem"]);
    const installed = await describeCertificate(data["ca-cert.pem"]);
    const notAfter = installed.notAfter.toISOString().replace(/\.\d{3}Z$/, "Z");
    const renewAt = renewalTime({ notBefore: installed.notBefore, notAfter: installed.notAfter, pem: data["ca-cert.pem"] }, DEFAULT_RENEW_BEFORE);

    const run = await status(["--kubeconfig", kubeconfig, "-n", issuedNs]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    const [header, ...rows] = table(run.stdout);
    expect(header).toEqual(["NAMESPACE", "NAME", "STATE", "KEY", "ROOTS", "NOT AFTER", "RENEWS IN", "ERROR", "BOUNCE"]);
    // A 365-day certificate renewed at 2/3 of its life, less up to a day of jitter.
    expect(rows).toEqual([[issuedNs, "good", "FINISHED", "ECDSA-P256", "1", notAfter, expect.stringMatching(/^24[23]d$/), "-", "-"]]);

    const json = await status(["--kubeconfig", kubeconfig, "-n", issuedNs, "-o", "json"]);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { now: string; items: StatusRow[] };
    expect(doc.items).toEqual([{
      namespace: issuedNs,
      name: "good",
      state: "FINISHED",
      error: "",
      target: { namespace: issuedNs, name: "cacerts-good", state: "ok", summary: "", message: "" },
      certificate: {
        key: "ECDSA-P256",
        notBefore: installed.notBefore.toISOString().replace(/\.\d{3}Z$/, "Z"),
        notAfter,
        renewalTime: renewAt.toISOString().replace(/\.\d{3}Z$/, "Z"),
        renewsInSeconds: expect.any(Number),
      },
      roots: { count: 1, rotation: "none" },
      problems: [],
    }]);
    expect(Math.abs(doc.items[0].certificate!.renewsInSeconds - (renewAt.getTime() - Date.parse(doc.now)) / 1000)).toBeLessThanOrEqual(2); // "now" is to the second

    const yaml = await status(["--kubeconfig", kubeconfig, "-n", issuedNs, "-o", "yaml"]);
    expect(yaml.code).toBe(0);
    const fromYaml = parseYaml(yaml.stdout) as { items: StatusRow[] };
    expect(fromYaml.items.map((r) => ({ ...r, certificate: { ...r.certificate, renewsInSeconds: 0 } })))
      .toEqual(doc.items.map((r) => ({ ...r, certificate: { ...r.certificate, renewsInSeconds: 0 } })));
  });

  it("a FAILED certificate (a foreign Secret at its target): exit 1, the row says why, stderr says which", async () => {
    await c.core.createNamespacedSecret({ namespace: issuedNs, body: { metadata: { name: "cacerts-blocked" }, stringData: { "ca-cert.pem": "hand-plugged" } } });
    await c.issued.create(issuedNs, newIssuedCertificate(issuedNs, "blocked", { target: { name: "cacerts-blocked", namespace: issuedNs }, annotations: P256 }));
    await waitForState(c, issuedNs, "blocked", "FAILED");

    const run = await status(["--kubeconfig", kubeconfig, "-n", issuedNs]);
    expect(run.code).toBe(1);
    const [, ...rows] = table(run.stdout);
    expect(rows.map((r) => r[1])).toEqual(["blocked", "good"]);
    expect(rows[0]).toEqual([issuedNs, "blocked", "FAILED", `foreign secret ${issuedNs}/cacerts-blocked`, "-", "-", "-",
      expect.stringContaining("is not managed by cert-agent; it was left untouched"), "-"]);
    expect(run.stderr).toBe(`cert-agent status: 1 of 2 need attention: ${issuedNs}/blocked (failed)\n`);

    const json = await status(["--kubeconfig", kubeconfig, "-n", issuedNs, "-o", "json"]);
    expect(json.code).toBe(1);
    const blocked = (JSON.parse(json.stdout) as { items: StatusRow[] }).items.find((r) => r.name === "blocked")!;
    expect(blocked).toMatchObject({ state: "FAILED", target: { state: "foreign" }, problems: ["failed"] });
    expect(blocked.certificate).toBeUndefined();
  });

  it("an expired certificate (written by hand, status set through the status subresource): exit 1, with its bounce progress", async () => {
    handNs = await createNamespace(c, "status-expired");
    const root = await createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date(Date.now() - 1000 * DAY) });
    const bundle = await signedBundle(root, { spec: { algorithm: "RSA", bits: 2048 }, now: new Date(Date.now() - 400 * DAY), ttlDays: 365 });
    privateKeys.push(bundle.caKey);
    const created = await c.issued.create(handNs, newIssuedCertificate(handNs, "old", {
      target: { name: "cacerts-old", namespace: handNs },
      podBounceDirective: { name: "bounce", namespace: handNs },
    }));
    await new SecretClient(c.kc).create(handNs, ourTargetSecret(created, bundle));
    await c.issued.replaceStatus({ ...created, status: { state: "FINISHED", observedGeneration: created.metadata.generation } });
    const directive = podBounceDirective("bounce", handNs, []);
    directive.metadata.annotations = { [BOUNCE_PROGRESS_ANNOTATION]: JSON.stringify({ cycle: `${handNs}/old#1`, outcome: "done", message: "" }) };
    await new CustomResourceClient<PodBounceDirective>(c.kc, POD_BOUNCE_DIRECTIVE).create(handNs, directive);

    const run = await status(["--kubeconfig", kubeconfig, "-n", handNs]);
    expect(run.code).toBe(1);
    const expiredAt = (await describeCertificate(bundle.caCert)).notAfter.toISOString().replace(/\.\d{3}Z$/, "Z");
    expect(table(run.stdout)[1]).toEqual([handNs, "old", "FINISHED", "RSA-2048", "1", expiredAt, expect.stringMatching(/^overdue 1\d\dd$/), "-", "done"]);
    expect(run.stderr).toBe(`cert-agent status: 1 of 1 need attention: ${handNs}/old (expired, overdue)\n`);

    const json = await status(["--kubeconfig", kubeconfig, "-n", handNs, "-o", "json"]);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as { items: StatusRow[] }).items).toEqual([expect.objectContaining({
      name: "old",
      state: "FINISHED",
      certificate: expect.objectContaining({ key: "RSA-2048", notAfter: expiredAt }),
      bounce: { directive: `${handNs}/bounce`, state: "done", message: "", cycle: `${handNs}/old#1` },
      problems: ["expired", "overdue"],
    })]);
  });

  it("without -n: the kubeconfig context's namespace; -A: every namespace", async () => {
    const inContext = kubeconfigWith("context-ns", (doc) => void (doc.contexts[0].context.namespace = handNs));
    const run = await status(["--kubeconfig", inContext, "-o", "json"]);
    expect(run.code).toBe(1);
    expect((JSON.parse(run.stdout) as { items: StatusRow[] }).items.map((r) => `${r.namespace}/${r.name}`)).toEqual([`${handNs}/old`]);
    // KUBECONFIG is honoured as kubectl does when --kubeconfig is absent.
    const viaEnv = await status(["-o", "json"], { KUBECONFIG: inContext });
    expect(viaEnv.code).toBe(1);
    expect((JSON.parse(viaEnv.stdout) as { items: StatusRow[] }).items.map((r) => r.name)).toEqual(["old"]);

    const all = await status(["--kubeconfig", kubeconfig, "-A", "-o", "json"]);
    // Other test files share this API server: only our namespaces are looked at, and a FAILED one means 1.
    expect(all.code).toBe(1);
    const ours = (JSON.parse(all.stdout) as { items: StatusRow[] }).items.filter((r) => r.namespace === issuedNs || r.namespace === handNs);
    expect(ours.map((r) => `${r.namespace}/${r.name}:${r.problems.join("+")}`)).toEqual([`${issuedNs}/blocked:failed`, `${issuedNs}/good:`, `${handNs}/old:expired+overdue`].sort());
  });

  it("API errors exit 2 with one line: nothing listening, and a user without RBAC (403)", async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const nowhere = kubeconfigWith("nowhere", (doc) => void (doc.clusters[0].cluster.server = `https://127.0.0.1:${port}`));
    const refused = await status(["--kubeconfig", nowhere, "-n", issuedNs]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(new RegExp(`^cert-agent status: cannot list IssuedCertificates in namespace ${issuedNs}: fetch failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\n$`));

    await c.core.createNamespacedServiceAccount({ namespace: handNs, body: { metadata: { name: "nobody" } } });
    const token = await c.core.createNamespacedServiceAccountToken({ name: "nobody", namespace: handNs, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const nobody = kubeconfigWith("nobody", (doc) => void (doc.users[0].user = { token: token.status!.token }));
    const forbidden = await status(["--kubeconfig", nobody, "-n", handNs]);
    expect(forbidden.code).toBe(2);
    expect(forbidden.stdout).toBe("");
    expect(forbidden.stderr).toBe(`cert-agent status: cannot list IssuedCertificates in namespace ${handNs}: HTTP 403 Forbidden: ` +
      `issuedcertificates.certificates.mesh.gloo.solo.io is forbidden: User "system:serviceaccount:${handNs}:nobody" cannot list resource ` +
      `"issuedcertificates" in API group "certificates.mesh.gloo.solo.io" in the namespace "${handNs}"\n`);
  });

  it("a user who may get secrets but not list them: the same rows (the LIST of target secrets falls back to GETs)", async () => {
    const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: issuedNs, body: { metadata: { name: "status-reader" }, rules: [
      { apiGroups: [GROUP], resources: ["issuedcertificates"], verbs: ["list"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
    ] } });
    await rbac.createNamespacedRoleBinding({ namespace: issuedNs, body: { metadata: { name: "status-reader" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "status-reader" },
      subjects: [{ kind: "ServiceAccount", name: "nobody", namespace: handNs }] } });
    const asAdmin = await status(["--kubeconfig", kubeconfig, "-n", issuedNs, "-o", "json"]);
    // The authorizer learns of a new Role from its informer, a moment later.
    const asReader = await waitFor("the Role to take effect", async () => {
      const run = await status(["--kubeconfig", join(dir, "nobody"), "-n", issuedNs, "-o", "json"]);
      return run.code === 2 && /HTTP 403/.test(run.stderr) ? undefined : run;
    }, 60_000, 200);
    expect(asReader.code).toBe(1);
    const rows = (r: Run) => (JSON.parse(r.stdout) as { items: StatusRow[] }).items.map((row) => ({ ...row, certificate: row.certificate && { ...row.certificate, renewsInSeconds: 0 } }));
    expect(rows(asReader)).toEqual(rows(asAdmin));
    expect(rows(asReader).map((r) => r.target.state)).toEqual(["foreign", "ok"]);
  });

  it("usage errors exit 2 with one line; --help exits 0 and documents the exit codes", async () => {
    const both = await status(["-n", "a", "-A"]);
    expect(both).toEqual({ code: 2, stdout: "", stderr: "cert-agent status: --namespace and --all-namespaces exclude each other\n" });
    const help = await status(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Exit codes:");
  });

  it("no output ever showed a private key", () => {
    expect(privateKeys).toHaveLength(2);
    const all = outputs.join("\n");
    expect(all).not.toMatch(/PRIVATE KEY/);
    for (const pem of privateKeys) expectNoKeyMaterial(all, pem);
  });
});
