// The agent end to end against the real kube-apiserver, etcd and garbage collector of the shared
// control plane, with the reference issuer: happy paths, every bad issuer answer, rotation, conflicts,
// deletion and secrets hygiene.
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import {
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  InProcessAgent,
  newIssuedCertificate,
  openssl,
  opensslCheckBundle,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForEvent,
  waitForState,
  RootCa,
} from "./harness";
import { ReferenceIssuer, FAIL_ANNOTATION, MISBEHAVE_ANNOTATION } from "./issuer/issuer";
import { MISBEHAVIOURS } from "./issuer/sign";
import { KEY_ALGORITHM_ANNOTATION, KEY_FINGERPRINT_ANNOTATION } from "../agent/constants";
import { IssuedCertificate } from "../shared/api/types";
import { ObjectClient } from "../shared/kube/api";
import { importPrivateKeyPem, publicKeyFingerprint } from "../shared/pki";

jest.setTimeout(180_000);

async function fingerprintOfKeyPem(pem: string): Promise<string> {
  return publicKeyFingerprint((await importPrivateKeyPem(pem)).publicKey);
}

async function eventsOf(c: Clients, namespace: string, name: string): Promise<{ reason: string; message: string; type: string }[]> {
  const list = await c.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => ({ reason: e.reason ?? "", message: e.message ?? "", type: e.type ?? "" }));
}

describeWithControlPlane("cert-agent end to end", () => {
  let c: Clients;
  let ns: string;
  let root: RootCa;
  let issuer: ReferenceIssuer;
  let agent: InProcessAgent;

  beforeAll(async () => {
    c = clients(sharedKubeConfig());
    ns = await createNamespace(c, "agent-e2e");
    root = await createSigningSecret(c, ns);
    issuer = await startIssuer(c.kc, ns);
    agent = await startInProcessAgent(c.kc, ["--namespace", ns, "--retry-base-delay", "1s", "--retry-max-delay", "4s"]);
  });

  afterAll(async () => {
    await agent?.stop();
    await issuer?.stop();
  });

  /** The agent's transition log lines for one object, parsed. */
  const transitionsOf = (name: string): { from: string; to: string; reason: string; namespace: string; name: string; generation: number; timestamp?: string }[] =>
    agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.message === "transition" && l.name === name);

  /** Creates an ECDSA P-256 IssuedCertificate (fast keys) writing to secret `target` of the test namespace. */
  const createP256 = (name: string, target: string, extra: { annotations?: Record<string, string>; ttlDays?: number } = {}) =>
    c.issued.create(ns, newIssuedCertificate(ns, name, {
      annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256", ...extra.annotations },
      target: { name: target, namespace: ns },
      ...(extra.ttlDays !== undefined ? { ttlDays: extra.ttlDays } : {}),
    }));

  it.each([
    ["RSA-4096 (the default)", {}, "RSA", 4096],
    ["RSA-2048", { rsaKeySizeBits: 2048 }, "RSA", 2048],
    ["ECDSA P-256", { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" } }, "EC", 256],
  ])("issues a verified cacerts for %s", async (_label, options, keyType, bits) => {
    const name = `happy-${bits}`;
    const target = `cacerts-${bits}`;
    const started = Date.now();
    await c.issued.create(ns, newIssuedCertificate(ns, name, { ...options, target: { name: target, namespace: ns } }));
    const done = await waitForState(c, ns, name, "FINISHED", 120_000);
    const elapsed = Date.now() - started;
    process.stderr.write(`[figure] ${_label}: IssuedCertificate created -> FINISHED in ${elapsed} ms\n`);
    expect(done.status?.error ?? "").toBe("");

    const secret = (await getSecretOrUndefined(c, ns, target))!;
    expect(secret.type).toBe("certificates.mesh.gloo.solo.io/issued_certificate");
    const data = decodeSecret(secret);
    expect(Object.keys(data).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    expect(data["root-cert.pem"]).toBe(root.certPem); // byte for byte
    expect(data["cert-chain.pem"]).toBe(data["ca-cert.pem"].replace(/\n+$/, "") + "\n" + root.certPem);

    const check = opensslCheckBundle(data);
    expect(check.verify).toBe("ca-cert.pem: OK");
    expect(check.keyMatches).toBe(true);
    const text = openssl(["x509", "-in", "ca-cert.pem", "-noout", "-text"], { "ca-cert.pem": data["ca-cert.pem"] });
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toContain("URI:spiffe://cluster.local/ns/istio-system/sa/istiod");
    const keyText = openssl(["pkey", "-in", "k.pem", "-noout", "-text"], { "k.pem": data["ca-key.pem"] });
    expect(keyText).toContain(keyType === "RSA" ? `Private-Key: (${bits} bit` : "ASN1 OID: prime256v1");

    // The key now lives only in the target secret; the CertificateRequest stays, owned by the IC.
    expect(await getSecretOrUndefined(c, ns, name)).toBeUndefined();
    const cr = (await c.requests.get(ns, name))!;
    expect(cr.metadata.ownerReferences?.[0]).toMatchObject({ kind: "IssuedCertificate", name, uid: done.metadata.uid });
    expect(cr.metadata.annotations?.[KEY_FINGERPRINT_ANNOTATION]).toBe(await fingerprintOfKeyPem(data["ca-key.pem"]));

    await waitForEvent(c, ns, name, "Finished");
    const reasons = (await eventsOf(c, ns, name)).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(["SpecChanged", "CertificateRequested", "Issued", "Finished"]));
  });

  it("logs one JSON line per transition, with namespace, name, generation, from, to and reason", () => {
    const transitions = transitionsOf("happy-2048");
    expect(transitions.map((t) => `${t.from}->${t.to}`)).toEqual(["->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED"]);
    for (const t of transitions) {
      expect(t).toMatchObject({ namespace: ns, name: "happy-2048", generation: 1 });
      expect(typeof t.reason).toBe("string");
    }
  });

  it("fails with Gloo Mesh's message when the issuer fails, then retries with backoff, not in a loop", async () => {
    const name = "issuer-fails";
    await createP256(name, "cacerts-fails", { annotations: { [FAIL_ANNOTATION]: "signing CA is offline" } });
    const failed = await waitForState(c, ns, name, "FAILED");
    expect(failed.status?.error).toBe(`certificate request ${ns}.${name} failed to be signed by Issuer: signing CA is offline`);
    await waitForEvent(c, ns, name, "IssuerFailed", "Warning");
    const events = await eventsOf(c, ns, name);
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ type: "Warning", reason: "IssuerFailed" })]));

    // Backoff 1s then 2s, with equal jitter (at least half of each): wait for two retries, then check
    // that each came no sooner than its backoff allows after the failure before it.
    await waitFor("two retries", async () => transitionsOf(name).filter((t) => t.reason === "Retrying").length >= 2 || undefined, 30_000);
    const steps = transitionsOf(name);
    const at = (t: { timestamp?: string }) => Date.parse(t.timestamp!);
    const retries = steps.map((t, i) => ({ t, i })).filter(({ t }) => t.reason === "Retrying").slice(0, 2);
    retries.forEach(({ t, i }, n) => {
      const failure = steps.slice(0, i).reverse().find((s) => s.to === "FAILED")!;
      expect(at(t) - at(failure)).toBeGreaterThanOrEqual(500 * 2 ** n - 5); // log timestamps are ms
    });
    expect(await getSecretOrUndefined(c, ns, "cacerts-fails")).toBeUndefined();
  });

  describe("refuses every bad answer of the issuer and keeps the good secret", () => {
    const name = "bad-answers";
    let good: Record<string, string>;
    let ttl = 30;

    beforeAll(async () => {
      await createP256(name, "cacerts-bad", { ttlDays: ttl });
      await waitForState(c, ns, name, "FINISHED");
      good = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts-bad"))!);
    });

    const expectedReason: Record<string, RegExp> = {
      "wrong-key": /PublicKeyMismatch/,
      "foreign-root": /UntrustedChain/,
      "not-a-ca": /NotACA/,
      expired: /Expired/,
      "not-yet-valid": /NotYetValid/,
      "wrong-sans": /SANMismatch/,
      garbage: /Malformed/,
      empty: /Malformed/,
    };

    it.each(MISBEHAVIOURS.filter((m) => m !== "none"))("%s", async (misbehave) => {
      const ic = (await c.issued.get(ns, name))!;
      ttl += 1; // a spec change: re-issue with a new key, this time answered wrongly
      ic.metadata.annotations = { ...ic.metadata.annotations, [MISBEHAVE_ANNOTATION]: misbehave };
      ic.spec!.certOptions!.ttlDays = ttl;
      await c.issued.replace(ic);
      const failed = await waitForState(c, ns, name, "FAILED");
      expect(failed.status?.error).toMatch(expectedReason[misbehave]);
      expect(failed.status?.error).toMatch(/target secret left unchanged/);
      expect(decodeSecret((await getSecretOrUndefined(c, ns, "cacerts-bad"))!)).toEqual(good);
    });
  });

  it("rotates to a new key on a spec change with no gap in the target secret", async () => {
    const name = "rotate";
    const target = "cacerts-rotate";
    await createP256(name, target);
    await waitForState(c, ns, name, "FINISHED");
    const before = decodeSecret((await getSecretOrUndefined(c, ns, target))!);

    // Watch the target the whole time: it must always exist and always be a matching key + cert.
    let observations = 0;
    const problems: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const s = await getSecretOrUndefined(c, ns, target);
        observations++;
        if (!s) problems.push("target secret missing");
        else {
          const d = decodeSecret(s);
          const check = opensslCheckBundle(d);
          if (check.verify !== "ca-cert.pem: OK" || !check.keyMatches) problems.push("bundle inconsistent");
        }
      }
    })();

    const ic = (await c.issued.get(ns, name))!;
    ic.spec!.hosts = [...ic.spec!.hosts!, "istiod.istio-system.svc"];
    await c.issued.replace(ic);
    const finished = await waitForState(c, ns, name, "FINISHED");
    watching = false;
    await watcher;
    expect(finished.metadata.generation).toBe(2);
    expect(problems).toEqual([]);
    // The request still carried generation 1's FINISHED status when it was overwritten: the agent must
    // wait for the issuer's answer to the new CSR, not pair the old certificate with the new key.
    const rotateTransitions = transitionsOf(name).map((t) => `${t.from}->${t.to}`);
    expect(rotateTransitions).toEqual([
      "->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED",
      "FINISHED->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED",
    ]);
    expect(observations).toBeGreaterThan(3);
    const after = decodeSecret((await getSecretOrUndefined(c, ns, target))!);
    expect(await fingerprintOfKeyPem(after["ca-key.pem"])).not.toBe(await fingerprintOfKeyPem(before["ca-key.pem"]));
    expect(openssl(["x509", "-in", "c.pem", "-noout", "-ext", "subjectAltName"], { "c.pem": after["ca-cert.pem"] })).toContain("DNS:istiod.istio-system.svc");
  });

  it("never pairs a new key with the stale FINISHED status of the overwritten request", async () => {
    const name = "stale-answer";
    await createP256(name, "cacerts-stale");
    await waitForState(c, ns, name, "FINISHED");
    const before = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts-stale"))!);
    await issuer.stop(); // the request keeps generation 1's FINISHED status after our overwrite
    try {
      const ic = (await c.issued.get(ns, name))!;
      ic.spec!.certOptions!.ttlDays = 90;
      await c.issued.replace(ic);
      await waitForState(c, ns, name, "REQUESTED");
      const cr = (await c.requests.get(ns, name))!;
      expect(cr.metadata.generation).toBe(2);
      expect(cr.status).toMatchObject({ observedGeneration: 1, state: "FINISHED" });
      // Make the agent look again at the request with its stale answer, and wait until it has.
      const passes = () => agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l))
        .filter((l) => l.message === "reconciled" && l.name === name && l.state === "REQUESTED").length;
      const seen = passes();
      await c.issued.patchAnnotations(ns, name, { "test/poke": "1" });
      await waitFor("the agent to look at the stale answer", async () => passes() > seen || undefined);
      expect((await c.issued.get(ns, name))!.status?.state).toBe("REQUESTED");
      expect(decodeSecret((await getSecretOrUndefined(c, ns, "cacerts-stale"))!)).toEqual(before);
    } finally {
      issuer = await startIssuer(c.kc, ns);
    }
    await waitForState(c, ns, name, "FINISHED");
    const after = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts-stale"))!);
    expect(after["ca-key.pem"]).not.toEqual(before["ca-key.pem"]);
    expect(opensslCheckBundle(after)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
  });

  it("re-issues when the target secret is deleted after FINISHED", async () => {
    const name = "target-deleted";
    const target = "cacerts-deleted";
    await createP256(name, target);
    await waitForState(c, ns, name, "FINISHED");
    await c.core.deleteNamespacedSecret({ name: target, namespace: ns });
    await waitFor("target secret to come back", () => getSecretOrUndefined(c, ns, target));
    await waitForState(c, ns, name, "FINISHED");
    await waitForEvent(c, ns, name, "TargetSecretMissing");
    expect((await eventsOf(c, ns, name)).map((e) => e.reason)).toContain("TargetSecretMissing");
  });

  it("refuses to overwrite a target secret it does not manage", async () => {
    const name = "foreign-target";
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "cacerts-foreign" }, stringData: { "ca-cert.pem": "hand-plugged" } } });
    await createP256(name, "cacerts-foreign");
    const failed = await waitForState(c, ns, name, "FAILED");
    expect(failed.status?.error).toMatch(/not managed by cert-agent; it was left untouched/);
    const s = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts-foreign"))!);
    expect(s).toEqual({ "ca-cert.pem": "hand-plugged" });
  });

  it("puts an invalid spec in status, an Event and the log, and makes no key", async () => {
    const name = "bad-spec";
    await c.issued.create(ns, newIssuedCertificate(ns, name, { rsaKeySizeBits: 1024, target: { name: "cacerts-badspec", namespace: ns } }));
    const failed = await waitForState(c, ns, name, "FAILED");
    expect(failed.status?.error).toMatch(/^invalid spec: unsupported RSA key size 1024/);
    await waitForEvent(c, ns, name, "InvalidSpec", "Warning");
    expect((await eventsOf(c, ns, name))).toEqual(expect.arrayContaining([expect.objectContaining({ reason: "InvalidSpec", type: "Warning" })]));
    expect(agent.logs()).toMatch(/"reason":"InvalidSpec"/);
    expect(await getSecretOrUndefined(c, ns, name)).toBeUndefined();
    expect(await c.requests.get(ns, name)).toBeUndefined();
  });

  it("on deletion, the garbage collector removes the request and staged key; the target secret stays", async () => {
    const name = "deleted";
    const target = "cacerts-kept";
    await createP256(name, target);
    await waitForState(c, ns, name, "FINISHED");
    // A re-issue the issuer refuses: the staged key and the request both exist at deletion time.
    const ic = (await c.issued.get(ns, name))!;
    ic.spec!.certOptions!.ttlDays = 99;
    ic.metadata.annotations = { ...ic.metadata.annotations, [FAIL_ANNOTATION]: "hold" };
    await c.issued.replace(ic);
    await waitForState(c, ns, name, "FAILED");
    expect(await c.requests.get(ns, name)).toBeDefined();
    await c.issued.delete(ns, name);
    await waitFor("CertificateRequest to be garbage collected", async () => (await c.requests.get(ns, name)) === undefined || undefined);
    await waitFor("staged key to be garbage collected", async () => (await getSecretOrUndefined(c, ns, name)) === undefined || undefined);
    expect(await getSecretOrUndefined(c, ns, target)).toBeDefined();
  });

  it("never writes key material to its logs", async () => {
    const logs = agent.logs();
    expect(logs.length).toBeGreaterThan(1000);
    expect(logs).not.toMatch(/PRIVATE KEY/);
    // Every key the agent ever wrote into a target secret of this namespace, PEM and base64 body.
    const secrets = await c.core.listNamespacedSecret({ namespace: ns });
    const keys = secrets.items.map((s) => decodeSecret(s)["ca-key.pem"]).filter(Boolean);
    expect(keys.length).toBeGreaterThanOrEqual(4);
    for (const pem of keys) {
      const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
      expect(logs).not.toContain(body.slice(0, 40));
      expect(logs).not.toContain(Buffer.from(pem).toString("base64").slice(0, 40));
    }
    // Nor in Events or statuses.
    const events = await c.core.listNamespacedEvent({ namespace: ns });
    const statuses = (await c.issued.list(ns)).items.map((i) => JSON.stringify(i.status));
    for (const text of [...events.items.map((e) => e.message ?? ""), ...statuses]) expect(text).not.toMatch(/PRIVATE KEY|MII[A-Za-z0-9+/]{20}/);
  });
});

describeWithControlPlane("status-update conflicts", () => {
  it("only requeue: a 409 on the status write never makes a new key", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "conflict");
    await createSigningSecret(c, ns);
    let conflicts = 0;
    // A concurrent writer: before each of the first two status writes, someone else updates the
    // object (an annotation), so the agent's write carries a stale resourceVersion and gets a real 409.
    const wrap = (inner: ObjectClient<IssuedCertificate>) => {
      const wrapped = Object.create(inner) as ObjectClient<IssuedCertificate>;
      wrapped.replaceStatus = async (body: IssuedCertificate) => {
        if (conflicts < 2 && body.status?.state === "REQUESTED") {
          conflicts++;
          const fresh = (await inner.get(body.metadata.namespace!, body.metadata.name!))!;
          fresh.metadata.annotations = { ...fresh.metadata.annotations, touched: String(conflicts) };
          await inner.replace(fresh);
        }
        return inner.replaceStatus(body);
      };
      return wrapped;
    };
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns], { wrapIssuedCertificates: wrap });
    const issuer = await startIssuer(c.kc, ns);
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "conflicted", { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" } }));
      await waitForState(c, ns, "conflicted", "FINISHED");
      expect(conflicts).toBe(2);
      const keygens = (await agent.metrics.keygenSeconds.get()).values.find((v) => v.metricName?.endsWith("_count"));
      expect(keygens?.value).toBe(1);
      const cr = (await c.requests.get(ns, "conflicted"))!;
      expect(cr.metadata.generation).toBe(1);
      const data = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!);
      expect(cr.metadata.annotations?.[KEY_FINGERPRINT_ANNOTATION]).toBe(await fingerprintOfKeyPem(data["ca-key.pem"]));
    } finally {
      await agent.stop();
      await issuer.stop();
    }
  });
});
