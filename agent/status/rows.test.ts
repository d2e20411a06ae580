// The rows and the verdict of `cert-agent status`, from objects as read and a fixed clock, with real
// certificates (signed by the reference issuer's code, the expired one in the past).
import { issuedCertificate, podBounceDirective } from "../../shared/api/builders";
import type { IssuedCertificate, IssuedCertificateState, PodBounceDirective } from "../../shared/api/types";
import type { Secret } from "../../shared/kube/secrets";
import { createRootCa, type RootCa } from "../../e2e/issuer/sign";
import { BOUNCE_PROGRESS_ANNOTATION, CA_CERT, CA_KEY, ISSUED_SECRET_TYPE, ORIGINAL_AGENT_LABEL, OWNER_ANNOTATION, ROOT_CERT } from "../constants";
import { ROOT_ROTATION_ANNOTATION } from "../root-rotation";
import { parseRenewBefore, renewalTime } from "../renewal";
import { EXIT_ERROR, EXIT_OK, EXIT_PROBLEM, type Fetched, type StatusInput, statusReport, statusRow } from "./rows";
import { ourTargetSecret, type SignedBundle, signedBundle } from "./testing";

jest.setTimeout(60_000);

const DAY = 86_400_000;
const HOUR = 3_600_000;
const NOW = new Date("2026-06-01T12:00:00Z");
const OPTIONS = { now: NOW, renewBefore: parseRenewBefore("1/3"), overdueAfterMs: HOUR };

let root: RootCa;
/** ECDSA P-256, signed 100 days ago for a year. */
let current: SignedBundle;
/** RSA-2048, signed 400 days ago for a year: expired 35 days ago. */
let expired: SignedBundle;

beforeAll(async () => {
  root = await createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date(NOW.getTime() - 1000 * DAY) });
  [current, expired] = await Promise.all([
    signedBundle(root, { spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date(NOW.getTime() - 100 * DAY), ttlDays: 365 }),
    signedBundle(root, { spec: { algorithm: "RSA", bits: 2048 }, now: new Date(NOW.getTime() - 400 * DAY), ttlDays: 365 }),
  ]);
});

function ic(name: string, state?: IssuedCertificateState, error?: string, o: { directive?: boolean; namespace?: string } = {}): IssuedCertificate {
  const namespace = o.namespace ?? "mesh";
  const obj = issuedCertificate({ name, namespace, target: { name: `cacerts-${name}`, namespace: "istio-system" },
    ...(o.directive ? { podBounceDirective: { name: "bounce", namespace: "" } } : {}) });
  if (state) obj.status = { state, observedGeneration: 1, ...(error ? { error } : {}) };
  return obj;
}

const found = <T>(object: T): Fetched<T> => ({ state: "found", object });
const MISSING = { state: "missing" } as const;

/** The agent's target for obj holding bundle. */
const ours = (obj: IssuedCertificate, bundle: SignedBundle) => found(ourTargetSecret(obj, bundle));
/** A window's renewal time, computed as the agent does (the jitter depends on the PEM's bytes). */
const renewAt = (bundle: SignedBundle) => {
  const notBefore = new Date(NOW.getTime() - 100 * DAY);
  return renewalTime({ notBefore, notAfter: new Date(notBefore.getTime() + 365 * DAY), pem: bundle.caCert }, parseRenewBefore("1/3"));
};

function withData(secret: Fetched<Secret>, change: (data: Record<string, string>) => void): Fetched<Secret> {
  if (secret.state !== "found") throw new Error("not found");
  const data = { ...secret.object.data };
  change(data);
  return found({ ...secret.object, data });
}

describe("statusRow: what the target secret holds", () => {
  it("a target in a root rotation: how many roots, and the step (from the target's annotation)", async () => {
    const obj = ic("good", "FINISHED");
    const secret = ourTargetSecret(obj, current);
    const extraRoot = (await createRootCa({ commonName: "another root", spec: { algorithm: "ECDSA", curve: "P-256" } })).certPem;
    const rootPem = Buffer.from(secret.data![ROOT_CERT]!, "base64").toString("utf8") + extraRoot;
    const sha = "ab".repeat(32);
    const rotating = (rotation: object): Fetched<Secret> => found({ ...secret, data: { ...secret.data, [ROOT_CERT]: Buffer.from(rootPem).toString("base64") },
      metadata: { ...secret.metadata, annotations: { ...secret.metadata.annotations, [ROOT_ROTATION_ANNOTATION]: JSON.stringify(rotation) } } });
    expect((await statusRow({ ic: obj, target: rotating({ phase: "trust", newRoots: [sha], since: "2026-06-01T00:00:00Z" }) }, OPTIONS)).roots)
      .toEqual({ count: 2, rotation: "trust" });
    expect((await statusRow({ ic: obj, target: rotating({ phase: "overlap", newRoots: [sha], until: "2026-06-02T01:00:00Z" }) }, OPTIONS)).roots)
      .toEqual({ count: 2, rotation: "overlap", until: "2026-06-02T01:00:00Z" });
  });

  it("a FINISHED certificate: key type, notAfter and renewal time from ca-cert.pem, no problem", async () => {
    const obj = ic("good", "FINISHED");
    const row = await statusRow({ ic: obj, target: ours(obj, current) }, OPTIONS);
    const at = renewAt(current);
    expect(row).toEqual({
      namespace: "mesh",
      name: "good",
      state: "FINISHED",
      error: "",
      target: { namespace: "istio-system", name: "cacerts-good", state: "ok", summary: "", message: "" },
      certificate: {
        key: "ECDSA-P256",
        notBefore: "2026-02-21T12:00:00Z",
        notAfter: "2027-02-21T12:00:00Z",
        renewalTime: at.toISOString().replace(/\.\d{3}Z$/, "Z"),
        renewsInSeconds: Math.trunc((at.getTime() - NOW.getTime()) / 1000),
      },
      roots: { count: 1, rotation: "none" },
      problems: [],
    });
    // 2/3 of 365 days after notBefore, less at most a day of jitter: 143 days from now.
    expect(row.certificate!.renewsInSeconds / 86_400).toBeGreaterThan(142.3);
    expect(row.certificate!.renewsInSeconds / 86_400).toBeLessThanOrEqual(143.34);
  });

  it("--renew-before as a duration moves the renewal time", async () => {
    const obj = ic("good", "FINISHED");
    const row = await statusRow({ ic: obj, target: ours(obj, current) }, { ...OPTIONS, renewBefore: parseRenewBefore("30d") });
    // 265 days left, renewed 30 days (plus up to 24 h of jitter) before the end.
    expect(row.certificate!.renewsInSeconds / 86_400).toBeGreaterThan(234);
    expect(row.certificate!.renewsInSeconds / 86_400).toBeLessThanOrEqual(235);
  });

  it.each<[string, (obj: IssuedCertificate) => Fetched<Secret> | undefined, Partial<StatusInput["ic"]["spec"]> | undefined, object, boolean]>([
    ["missing", () => MISSING, undefined,
      { state: "missing", summary: "no secret istio-system/cacerts-t", message: "target secret istio-system/cacerts-t does not exist" }, false],
    ["unreadable (403)", () => ({ state: "error", message: "HTTP 403 Forbidden: secrets is forbidden" }), undefined,
      { state: "unreadable", summary: "cannot read istio-system/cacerts-t", message: "target secret istio-system/cacerts-t could not be read: HTTP 403 Forbidden: secrets is forbidden" }, false],
    ["not labelled as ours (hand-plugged)", () => found({ metadata: { name: "cacerts-t", namespace: "istio-system" }, data: { [CA_CERT]: Buffer.from(current.caCert).toString("base64") } }), undefined,
      { state: "foreign", summary: "foreign secret istio-system/cacerts-t", message: expect.stringMatching(/^target secret istio-system\/cacerts-t exists and is not managed by cert-agent/) }, false],
    ["ours but stamped for another IssuedCertificate", (obj) => {
      const secret = ourTargetSecret(obj, current);
      secret.metadata.annotations![OWNER_ANNOTATION] = "other/ic";
      return found(secret);
    }, undefined,
      { state: "foreign", summary: "foreign secret istio-system/cacerts-t", message: "target secret istio-system/cacerts-t belongs to IssuedCertificate other/ic; it was left untouched" }, false],
    ["written by Gloo Mesh's own agent for this IssuedCertificate (adopted, not foreign)", (obj) => found({
      metadata: { name: "cacerts-t", namespace: "istio-system", labels: { [ORIGINAL_AGENT_LABEL]: "mesh" } },
      type: ISSUED_SECRET_TYPE,
      data: { ...ourTargetSecret(obj, current).data, "key.pem": "" },
    }), undefined,
      { state: "original", summary: "Gloo Mesh agent's", message: "target secret istio-system/cacerts-t was written by Gloo Mesh's agent; cert-agent adopts it" }, true],
    ["written by Gloo Mesh's agent for another namespace's IssuedCertificate", () => found({
      metadata: { name: "cacerts-t", namespace: "istio-system", labels: { [ORIGINAL_AGENT_LABEL]: "elsewhere" } },
      type: ISSUED_SECRET_TYPE,
      data: { [CA_CERT]: Buffer.from(current.caCert).toString("base64") },
    }), undefined,
      { state: "foreign", summary: "foreign secret istio-system/cacerts-t" }, false],
    ["without ca-cert.pem", (obj) => withData(ours(obj, current), (d) => delete d[CA_CERT]), undefined,
      { state: "incomplete", summary: "istio-system/cacerts-t lacks ca-cert.pem", message: "target secret istio-system/cacerts-t lacks ca-cert.pem" }, false],
    ["without ca-key.pem (the certificate is still shown)", (obj) => withData(ours(obj, current), (d) => delete d[CA_KEY]), undefined,
      { state: "incomplete", summary: "istio-system/cacerts-t lacks ca-key.pem", message: "target secret istio-system/cacerts-t lacks ca-key.pem" }, true],
    ["with an unparsable ca-cert.pem", (obj) => withData(ours(obj, current), (d) => (d[CA_CERT] = Buffer.from("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").toString("base64"))), undefined,
      { state: "unparsable", summary: "unparsable ca-cert.pem", message: "target secret istio-system/cacerts-t: ca-cert.pem is not one parseable PEM certificate" }, false],
    ["with two certificates in ca-cert.pem", (obj) => withData(ours(obj, current), (d) => (d[CA_CERT] = Buffer.from(current.caCert + expired.caCert).toString("base64"))), undefined,
      { state: "unparsable", summary: "unparsable ca-cert.pem" }, false],
    ["named by no spec field", () => undefined, { issuedCertificateSecret: undefined },
      { state: "unspecified", summary: "no target in spec", message: "spec.issuedCertificateSecret names no secret (name and namespace)" }, false],
    ["named without a namespace", () => MISSING, { issuedCertificateSecret: { name: "cacerts", namespace: "" } },
      { state: "unspecified", summary: "no target in spec" }, false],
  ])("a target secret %s gives an explanatory cell, never a crash", async (_what, target, spec, expected, hasCertificate) => {
    const obj = ic("t", "FINISHED");
    if (spec) obj.spec = { ...obj.spec, ...spec };
    const fetched = target(obj);
    const row = await statusRow({ ic: obj, ...(fetched ? { target: fetched } : {}) }, OPTIONS);
    expect(row.target).toMatchObject(expected);
    expect(row.certificate !== undefined).toBe(hasCertificate);
    expect(row.problems).toEqual([]);
  });
});

describe("statusRow: problems (what makes the exit code 1)", () => {
  it.each<[string, IssuedCertificateState | undefined, "current" | "expired", number, string[]]>([
    ["FINISHED, renewal far ahead", "FINISHED", "current", 0, []],
    ["FAILED", "FAILED", "current", 0, ["failed"]],
    ["no status yet", undefined, "current", 0, []],
    ["past its renewal time by 30 m (the agent is at it: normal)", "REQUESTED", "current", 30 * 60_000, []],
    ["past its renewal time by exactly --overdue-after", "FINISHED", "current", HOUR, []],
    ["past its renewal time by 2 h", "FINISHED", "current", 2 * HOUR, ["overdue"]],
    ["expired 35 days ago", "FINISHED", "expired", 0, ["expired", "overdue"]],
    ["expired and FAILED", "FAILED", "expired", 0, ["failed", "expired", "overdue"]],
  ])("%s", async (_what, state, which, pastRenewalMs, problems) => {
    const bundle = which === "current" ? current : expired;
    const obj = ic("p", state);
    const now = pastRenewalMs > 0 ? new Date(renewAt(bundle).getTime() + pastRenewalMs) : NOW;
    const row = await statusRow({ ic: obj, target: ours(obj, bundle) }, { ...OPTIONS, now });
    expect(row.problems).toEqual(problems);
    if (pastRenewalMs > 0) expect(row.certificate!.renewsInSeconds).toBe(-pastRenewalMs / 1000);
  });

  it("expired means notAfter <= now, to the millisecond", async () => {
    const obj = ic("edge", "FINISHED");
    const notAfter = new Date(NOW.getTime() + 265 * DAY);
    const at = await statusRow({ ic: obj, target: ours(obj, current) }, { ...OPTIONS, now: notAfter, overdueAfterMs: 1000 * DAY });
    const before = await statusRow({ ic: obj, target: ours(obj, current) }, { ...OPTIONS, now: new Date(notAfter.getTime() - 1), overdueAfterMs: 1000 * DAY });
    expect(at.problems).toEqual(["expired"]);
    expect(before.problems).toEqual([]);
  });

  it("status.error is carried as written (the formatter makes it one line)", async () => {
    const obj = ic("e", "FAILED", "issuer said no");
    const row = await statusRow({ ic: obj, target: MISSING }, OPTIONS);
    expect(row).toMatchObject({ state: "FAILED", error: "issuer said no", problems: ["failed"] });
  });
});

describe("statusRow: the bounce progress of the PodBounceDirective", () => {
  const directive = (annotation?: string): PodBounceDirective => {
    const d = podBounceDirective("bounce", "mesh", []);
    if (annotation !== undefined) d.metadata.annotations = { [BOUNCE_PROGRESS_ANNOTATION]: annotation };
    return d;
  };

  it.each<[string, Fetched<PodBounceDirective> | undefined, object | undefined]>([
    ["none named", undefined, undefined],
    ["named but missing", MISSING, { directive: "mesh/bounce", state: "missing", message: "PodBounceDirective mesh/bounce does not exist" }],
    ["unreadable", { state: "error", message: "HTTP 500" }, { directive: "mesh/bounce", state: "unreadable", message: "PodBounceDirective mesh/bounce could not be read: HTTP 500" }],
    ["no progress yet", found(directive()), { directive: "mesh/bounce", state: "none", message: "" }],
    ["malformed progress (reads as none)", found(directive("{not json")), { directive: "mesh/bounce", state: "none", message: "" }],
    ["waiting", found(directive(JSON.stringify({ cycle: "mesh/b#2", outcome: "waiting", message: "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready" }))),
      { directive: "mesh/bounce", state: "waiting", message: "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready", cycle: "mesh/b#2" }],
    ["done", found(directive(JSON.stringify({ cycle: "mesh/b#2", outcome: "done", message: "" }))), { directive: "mesh/bounce", state: "done", message: "", cycle: "mesh/b#2" }],
    ["error", found(directive(JSON.stringify({ cycle: "mesh/b#3", outcome: "error", message: "secret key missing" }))), { directive: "mesh/bounce", state: "error", message: "secret key missing", cycle: "mesh/b#3" }],
  ])("%s", async (_what, fetched, expected) => {
    const obj = ic("b", "ISSUED", undefined, { directive: fetched !== undefined });
    const row = await statusRow({ ic: obj, target: MISSING, ...(fetched ? { directive: fetched } : {}) }, OPTIONS);
    expect(row.bounce).toEqual(expected);
  });
});

describe("statusRow: an IssuedCertificate without namespace or name (not as the API server serves it)", () => {
  it("empty strings, never a made-up name, also for the directive that defaults to its namespace", async () => {
    const bare: IssuedCertificate = { metadata: {}, spec: { podBounceDirective: { name: "bounce", namespace: "" } } };
    const row = await statusRow({ ic: bare, directive: MISSING }, OPTIONS);
    expect(row).toMatchObject({ namespace: "", name: "", state: "", error: "", target: { state: "unspecified" } });
    expect(row.bounce).toEqual({ directive: "/bounce", state: "missing", message: "PodBounceDirective /bounce does not exist" });
  });
});

describe("statusReport: sorted rows and one exit code", () => {
  const input = (name: string, state: IssuedCertificateState | undefined, target: "current" | "expired" | "missing" | "unreadable", namespace = "mesh"): StatusInput => {
    const obj = ic(name, state, undefined, { namespace });
    const fetched: Fetched<Secret> = target === "missing" ? MISSING : target === "unreadable" ? { state: "error", message: "HTTP 403 Forbidden" } : ours(obj, target === "current" ? current : expired);
    return { ic: obj, target: fetched };
  };

  // Specs, not inputs: the certificates exist only once beforeAll has run.
  type Spec = [name: string, state: IssuedCertificateState | undefined, target: "current" | "expired" | "missing" | "unreadable"];
  it.each<[string, Spec[], number]>([
    ["nothing at all", [], EXIT_OK],
    ["all well (a missing target is the agent's business, not a verdict)", [["a", "FINISHED", "current"], ["b", "PENDING", "missing"]], EXIT_OK],
    ["one FAILED", [["a", "FINISHED", "current"], ["b", "FAILED", "current"]], EXIT_PROBLEM],
    ["one expired", [["a", "FINISHED", "expired"]], EXIT_PROBLEM],
    ["a secret unreadable and nothing else wrong: incomplete", [["a", "FINISHED", "current"], ["b", "FINISHED", "unreadable"]], EXIT_ERROR],
    ["a secret unreadable and one FAILED: the known problem wins", [["a", "FAILED", "current"], ["b", "FINISHED", "unreadable"]], EXIT_PROBLEM],
  ])("%s", async (_what, specs, exitCode) => {
    const report = await statusReport(specs.map((s) => input(...s)), OPTIONS);
    expect(report.exitCode).toBe(exitCode);
    expect(report.now).toBe("2026-06-01T12:00:00Z");
    expect(report.rows).toHaveLength(specs.length);
  });

  it("sorts by namespace, then name", async () => {
    const report = await statusReport([input("b", "FINISHED", "missing", "z"), input("c", "FINISHED", "missing", "a"), input("a", "FINISHED", "missing", "z")], OPTIONS);
    expect(report.rows.map((r) => `${r.namespace}/${r.name}`)).toEqual(["a/c", "z/a", "z/b"]);
  });
});
