// The pod bouncer with its I/O (in-memory API, fake clock, in-memory Events, a fake Eviction API) and
// a small cluster the test steps between passes (testing.ts): whole cycles in selector order, crashes,
// new cycles, blocked evictions, rollout restarts, root sync errors.
import { requeueAfter, requeueNow } from "../../shared/controller/controller";
import { BOUNCE_PROGRESS_ANNOTATION, BOUNCED_UIDS_ANNOTATION, ROOT_CERT, RESTARTED_FOR_ANNOTATION } from "../constants";
import type { BounceSelector } from "../../shared/api/types";
import type { KubeObject } from "../../shared/kube/api";
import type { Secret } from "../../shared/kube/secrets";
import { rolledOut } from "./pod-bouncer-reconciler";
import type { ConfigMap, Pod, Workload } from "./pod-bouncer-reconciler";
import { App, APPS, BouncerEnv, DIRECTIVE, GATEWAY, ISTIOD, KEY, NEW_ROOT, NS, POLL_MS, WORKLOAD } from "./testing";

const ISTIOD_WHERE = "pods in istio-system with app=istiod";
const GATEWAY_WHERE = "pods in istio-system with app=istio-ingressgateway";
const WEB_WHERE = "pods in apps with app=web";
const GATEWAY_WAIT = `${GATEWAY_WHERE}: waiting for ConfigMap istio-system/istio-ca-root-cert key root-cert.pem to hold the new root`;

/** The cert-agent.io/bounced-uids annotation, parsed. */
const bouncedUids = (env: BouncerEnv): unknown => JSON.parse(env.directive().metadata.annotations?.[BOUNCED_UIDS_ANNOTATION] ?? "null");
const uidOf = (env: BouncerEnv, name: string, namespace = "istio-system") => env.api.peek<Pod>("Pod", namespace, name)!.metadata.uid!;
const ownedBy = (kind: string, o: KubeObject) => [{ apiVersion: "apps/v1", kind, name: o.metadata.name!, uid: o.metadata.uid!, controller: true }];

/** A Deployment istio-system/istiod, rolled out, owning (through ReplicaSet istiod-6d4) the Ready pod istiod-6d4-a. */
function seedIstiodDeployment(env: BouncerEnv): void {
  const deployment = env.api.seed<Workload>("Deployment", {
    metadata: { name: "istiod", namespace: "istio-system" },
    spec: { replicas: 1, template: {} },
    status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 },
  });
  const rs = env.api.seed<Workload>("ReplicaSet", { metadata: { name: "istiod-6d4", namespace: "istio-system", ownerReferences: ownedBy("Deployment", deployment) } });
  env.addPod({ namespace: "istio-system", app: "istiod", replicas: 0 }, { ready: true, name: "istiod-6d4-a", ownerReferences: ownedBy("ReplicaSet", rs) });
}

/** How often each pod was restarted. */
const counts = (names: string[]) => names.reduce<Record<string, number>>((c, n) => ({ ...c, [n]: (c[n] ?? 0) + 1 }), {});

describe.each(["evict", "delete"] as const)("PodBouncerReconciler, a whole cycle (%s)", (strategy) => {
  it("restarts the groups in selector order, each exactly once, waiting for replicas and for the root istiod publishes", async () => {
    const env = new BouncerEnv({ strategy });
    await env.requestBounce(1);
    const { results, errors } = await env.runCycle();

    expect(errors).toEqual([]);
    expect(results).toEqual([
      requeueNow, // a new cycle: podsBounced reset, progress "starting"
      requeueNow, // istiod recorded
      requeueNow, // istiod restarted
      requeueAfter(POLL_MS), // 0 of 1 replacement istiod Ready
      requeueAfter(POLL_MS), // the gateway waits for the new root in istio-ca-root-cert
      requeueNow, // gateway recorded
      requeueNow, // gateway restarted
      requeueNow, // web recorded (the gateway has no waitForReplicas)
      requeueNow, // web restarted
      undefined, // done
    ]);
    // Order: istiod, then (after istiod published the new root) the gateway, then the workload.
    expect(env.timeline).toEqual([
      "publish old root",
      "restart istio-system/istiod-1",
      "restart istio-system/istiod-2",
      "publish new root",
      "restart istio-system/istio-ingressgateway-1",
      "restart apps/web-1",
      "restart apps/web-2",
    ]);
    // Gloo Mesh's status shape, one entry per selector, in spec order.
    expect(env.directive().status).toEqual({
      podsBounced: [
        { bouncedPods: ["istiod-1", "istiod-2"] },
        { bouncedPods: ["istio-ingressgateway-1"] },
        { bouncedPods: ["web-1", "web-2"] },
      ],
    });
    expect(env.progressJson()).toEqual({ cycle: "mesh/ic#1", outcome: "done", message: "every selector bounced" });
    expect(env.eventLog()).toEqual([
      ["Normal", "PodsRestarted", `${ISTIOD_WHERE}: restarted Pod/istiod-1, Pod/istiod-2 (${strategy})`],
      ["Normal", "BounceWaiting", `${ISTIOD_WHERE}: 0 of 1 replacement pods Ready`],
      ["Normal", "BounceWaiting", GATEWAY_WAIT],
      ["Normal", "PodsRestarted", `${GATEWAY_WHERE}: restarted Pod/istio-ingressgateway-1 (${strategy})`],
      ["Normal", "PodsRestarted", `${WEB_WHERE}: restarted Pod/web-1, Pod/web-2 (${strategy})`],
    ]);
    if (strategy === "evict") expect(env.writes.filter((w) => w.kind === "Pod")).toEqual([]);
    else expect(env.evictor.calls).toEqual([]);

    // Done: later passes (woken by pods coming and going) write nothing.
    env.writes.length = 0;
    await env.step();
    expect(await env.reconcile()).toBeUndefined();
    expect(env.writes).toEqual([]);
    expect(env.restarted()).toHaveLength(5);
  });

  it("a crash between recording a group and restarting it completes the restart and never restarts the group twice", async () => {
    const env = new BouncerEnv({ strategy });
    await env.requestBounce(1);
    // Crashes in the middle of two groups' restarts (the first pod of each restarted, the second not).
    if (strategy === "evict") {
      env.evictor.fail("istiod-2");
      env.evictor.fail("web-2");
    } else {
      env.api.failNext({ kind: "Pod", verb: "delete", name: "istiod-2", error: 500 });
      env.api.failNext({ kind: "Pod", verb: "delete", name: "web-2", error: 500 });
    }
    // And a failover after every pass: each pass runs on a new reconciler instance, so every record
    // is followed by a restart on an instance that did not record it.
    const { errors } = await env.runCycle({ restartEveryPass: true });

    expect(errors).toHaveLength(2);
    expect(counts(env.restarted())).toEqual({
      "istio-system/istiod-1": 1,
      "istio-system/istiod-2": 1,
      "istio-system/istio-ingressgateway-1": 1,
      "apps/web-1": 1,
      "apps/web-2": 1,
    });
    expect(env.restarted()).toEqual([
      "istio-system/istiod-1", "istio-system/istiod-2", "istio-system/istio-ingressgateway-1", "apps/web-1", "apps/web-2",
    ]);
    expect(env.progress()).toMatchObject({ cycle: "mesh/ic#1", outcome: "done" });
  });

  it("restarts after a crash right after the record exactly the recorded pods, not pods that appeared since", async () => {
    const env = new BouncerEnv({ strategy, selectors: [ISTIOD] });
    await env.requestBounce(1);
    expect(await env.reconcile()).toEqual(requeueNow); // reset
    expect(await env.reconcile()).toEqual(requeueNow); // record
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: ["istiod-1", "istiod-2"] }] });
    expect(env.restarted()).toEqual([]);
    // The agent dies here; meanwhile an autoscaler adds a pod. A new instance picks up the cycle.
    env.addPod(APPS[0], { ready: true, name: "istiod-scaled" });
    env.restart();
    expect(await env.reconcile()).toEqual(requeueNow);
    expect(env.restarted()).toEqual(["istio-system/istiod-1", "istio-system/istiod-2"]);
    // The scaled-up pod is Ready and not recorded: it counts as a replacement, and nothing is restarted again.
    expect(await env.reconcile()).toBeUndefined();
    expect(env.progress()).toMatchObject({ outcome: "done" });
    expect(env.restarted()).toEqual(["istio-system/istiod-1", "istio-system/istiod-2"]);
  });
});

describe("PodBouncerReconciler", () => {
  it("a conflict writing the record requeues soon and restarts nothing", async () => {
    const env = new BouncerEnv();
    await env.requestBounce(1);
    await env.reconcile(); // reset
    env.api.failNext({ kind: "PodBounceDirective", verb: "replaceStatus", error: 409 });
    expect(await env.reconcile()).toEqual(requeueAfter(200));
    expect(env.directive().status).toEqual({ podsBounced: [] });
    expect(env.restarted()).toEqual([]);
    await env.runCycle();
    expect(counts(env.restarted())).toEqual(Object.fromEntries(
      ["istio-system/istiod-1", "istio-system/istiod-2", "istio-system/istio-ingressgateway-1", "apps/web-1", "apps/web-2"].map((p) => [p, 1])));
  });

  it("a new cycle (bounce request for revision 2) resets podsBounced and bounces again", async () => {
    const env = new BouncerEnv();
    await env.requestBounce(1);
    await env.runCycle();
    await env.step();
    env.timeline.length = 0;
    env.events.events.length = 0;

    env.clock.advance(86_400_000);
    await env.requestBounce(2);
    expect(await env.reconcile()).toEqual(requeueNow);
    expect(env.directive().status).toEqual({ podsBounced: [] });
    expect(env.progressJson()).toEqual({ cycle: "mesh/ic#2", outcome: "waiting", message: "starting" });
    expect(env.restarted()).toEqual([]);

    await env.runCycle();
    // The pods cycle 1 created are restarted, once each, in order; the root did not change, so the
    // gateway does not wait for it this time.
    expect(env.restarted()).toEqual([
      "istio-system/istiod-3", "istio-system/istiod-4", "istio-system/istio-ingressgateway-2", "apps/web-3", "apps/web-4",
    ]);
    expect(env.directive().status).toEqual({
      podsBounced: [
        { bouncedPods: ["istiod-3", "istiod-4"] },
        { bouncedPods: ["istio-ingressgateway-2"] },
        { bouncedPods: ["web-3", "web-4"] },
      ],
    });
    expect(env.progressJson()).toEqual({ cycle: "mesh/ic#2", outcome: "done", message: "every selector bounced" });
    expect(env.eventLog().map(([, reason]) => reason)).toEqual(["PodsRestarted", "BounceWaiting", "PodsRestarted", "PodsRestarted"]);
  });

  it("an eviction blocked by a PodDisruptionBudget (429) is retried on the next pass and reported, never turned into a delete", async () => {
    const env = new BouncerEnv({ strategy: "evict" });
    env.evictor.block("istiod-1", 2);
    await env.requestBounce(1);
    await env.reconcile(); // reset
    await env.reconcile(); // record
    const blocked = `${ISTIOD_WHERE}: eviction of istiod-1 blocked by a PodDisruptionBudget; retrying`;

    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.eventLog()).toEqual([
      ["Normal", "PodsRestarted", `${ISTIOD_WHERE}: restarted Pod/istiod-2 (evict)`],
      ["Warning", "BounceWaiting", blocked],
    ]);
    // The progress says why: a BounceTimedOut on the IssuedCertificate would name the budget.
    expect(env.progress()).toMatchObject({ outcome: "waiting", message: blocked });

    await env.runCycle();
    expect(env.evictor.calls.filter((c) => c.name === "istiod-1").map((c) => c.answer)).toEqual(["blocked", "blocked", "evicted"]);
    expect(counts(env.restarted())["istio-system/istiod-1"]).toBe(1);
    expect(env.writes.filter((w) => w.kind === "Pod")).toEqual([]); // never a delete
    // Nothing after istiod went before istiod-1 was evicted.
    expect(env.timeline.indexOf("restart istio-system/istiod-1")).toBeLessThan(env.timeline.indexOf("restart istio-system/istio-ingressgateway-1"));
    expect(env.eventLog().filter(([type]) => type === "Warning")).toEqual([["Warning", "BounceWaiting", blocked], ["Warning", "BounceWaiting", blocked]]);
    expect(env.progress()).toMatchObject({ cycle: "mesh/ic#1", outcome: "done" });
  });

  it("rollout: marks the Deployment's pod template once (a second pass writes nothing), then waits until its status says rolled out", async () => {
    const env = new BouncerEnv({ strategy: "rollout", selectors: [ISTIOD], apps: [] });
    const istiod = { namespace: "istio-system", app: "istiod", replicas: 0 };
    const deployment = env.api.seed<Workload>("Deployment", {
      metadata: { name: "istiod", namespace: "istio-system" },
      spec: { replicas: 1, template: { metadata: { annotations: { "sidecar.istio.io/inject": "false" } } } },
      status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 },
    });
    const rs1 = env.api.seed<Workload>("ReplicaSet", { metadata: { name: "istiod-6d4", namespace: "istio-system", ownerReferences: ownedBy("Deployment", deployment) } });
    env.addPod(istiod, { ready: true, name: "istiod-6d4-a", ownerReferences: ownedBy("ReplicaSet", rs1) });
    env.addPod(istiod, { ready: true, name: "istiod-debug" }); // a bare pod: no workload to roll out

    await env.requestBounce(1);
    expect(await env.reconcile()).toEqual(requeueNow); // reset
    expect(await env.reconcile()).toEqual(requeueNow); // record
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: ["istiod-6d4-a", "istiod-debug"] }] });
    expect(await env.reconcile()).toEqual(requeueNow); // restart
    const marked = env.api.peek<Workload>("Deployment", "istio-system", "istiod")!;
    expect(marked.spec?.template?.metadata?.annotations).toEqual({ "sidecar.istio.io/inject": "false", [RESTARTED_FOR_ANNOTATION]: "mesh/ic#1" });
    expect(marked.spec?.replicas).toBe(1);
    expect(marked.metadata.generation).toBe(2);
    expect(env.timeline).toEqual(["publish old root", "mark Deployment/istiod", "restart istio-system/istiod-debug"]);
    expect(env.eventLog()).toEqual([["Normal", "PodsRestarted", `${ISTIOD_WHERE}: restarted Deployment/istiod, Pod/istiod-debug (rollout)`]]);

    // Marked, not rolled out (the controller has not seen generation 2): wait, and mark nothing again.
    const rolling = `${ISTIOD_WHERE}: waiting for the rollout of Deployment/istiod`;
    env.writes.length = 0;
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.writes.map((w) => `${w.kind} ${w.verb}`)).toEqual(["PodBounceDirective patchAnnotations"]);
    expect(env.progress()).toMatchObject({ outcome: "waiting", message: rolling });
    env.writes.length = 0;
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.writes).toEqual([]);

    // The Deployment controller starts the rollout: generation observed, nothing updated yet.
    const deployments = env.api.client<Workload>("Deployment");
    await deployments.replaceStatus({ ...marked, status: { observedGeneration: 2, replicas: 2, updatedReplicas: 0, availableReplicas: 1 } });
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.writes).toEqual([]);
    // ... and finishes it: a new ReplicaSet with a Ready pod, the old pod gone.
    const rs2 = env.api.seed<Workload>("ReplicaSet", { metadata: { name: "istiod-7f9", namespace: "istio-system", ownerReferences: ownedBy("Deployment", deployment) } });
    env.addPod(istiod, { ready: true, name: "istiod-7f9-a", ownerReferences: ownedBy("ReplicaSet", rs2) });
    await env.pods.delete("istio-system", "istiod-6d4-a");
    await env.step(); // the terminating pods go away
    await deployments.replaceStatus({ ...env.api.peek<Workload>("Deployment", "istio-system", "istiod")!,
      status: { observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 } });
    expect(await env.reconcile()).toBeUndefined();
    expect(env.progress()).toMatchObject({ outcome: "done" });

    expect(env.timeline.filter((t) => t.startsWith("mark "))).toEqual(["mark Deployment/istiod"]);
    expect(env.evictor.calls.map((c) => c.name)).toEqual(["istiod-debug"]);
  });

  it.each<[string, { targetData?: Record<string, string>; noSecret?: boolean }, BounceSelector, string]>([
    ["the target secret lacks the key", { targetData: { "ca-cert.pem": "Q0VSVA==" } }, GATEWAY,
      `${GATEWAY_WHERE}: secret istio-system/cacerts has no key root-cert.pem`],
    ["the target secret is missing", { noSecret: true }, GATEWAY,
      `${GATEWAY_WHERE}: secret istio-system/cacerts has no key root-cert.pem`],
    ["rootCertSync is incomplete", {}, { ...GATEWAY, rootCertSync: { ...GATEWAY.rootCertSync, configMapKey: undefined } },
      `${GATEWAY_WHERE}: rootCertSync needs secretRef, secretKey, configMapRef and configMapKey`],
  ])("rootCertSync: %s -> progress error with a clear message, nothing restarted", async (_name, o, selector, message) => {
    const env = new BouncerEnv({ selectors: [selector], targetData: o.targetData });
    if (o.noSecret) await env.secrets.delete("istio-system", "cacerts");
    await env.requestBounce(1);
    await env.runCycle();
    expect(env.progressJson()).toEqual({ cycle: "mesh/ic#1", outcome: "error", message });
    expect(env.eventLog()).toEqual([["Warning", "BounceFailed", message]]);
    expect(env.directive().status).toEqual({ podsBounced: [] });
    expect(env.restarted()).toEqual([]);
    // Woken again (a pod changed): the same error is not written or reported again.
    env.writes.length = 0;
    expect(await env.reconcile()).toBeUndefined();
    expect(env.writes).toEqual([]);
    expect(env.events.events).toHaveLength(1);
  });

  it("--pod-namespaces: a selector outside them is a progress error saying so; the groups before it are restarted, nothing is read or restarted there", async () => {
    const env = new BouncerEnv({ selectors: [ISTIOD, WORKLOAD], podNamespaces: ["istio-system"] });
    const listed: string[] = [];
    const list = env.pods.list.bind(env.pods);
    env.pods.list = (ns?: string, labels?: string) => {
      listed.push(ns ?? "(all)");
      return list(ns, labels);
    };
    await env.requestBounce(1);
    await env.runCycle();
    const message = "pods in apps with app=web: namespace apps is not one of --pod-namespaces, where this agent may restart pods; add it (chart: rbac.podNamespaces)";
    expect(env.progressJson()).toEqual({ cycle: "mesh/ic#1", outcome: "error", message });
    expect(env.restarted().every((r) => r.startsWith("istio-system/"))).toBe(true);
    expect(env.restarted().length).toBeGreaterThan(0);
    expect(listed).not.toContain("apps");
    expect(env.eventLog().at(-1)).toEqual(["Warning", "BounceFailed", message]);
  });

  it("rootCertSync compares the ConfigMap with the decoded secret key, exactly", async () => {
    const env = new BouncerEnv({ selectors: [GATEWAY], publishedRoot: null });
    await env.requestBounce(1);
    await env.reconcile(); // reset
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.progress()?.message).toBe(`${GATEWAY_WHERE}: waiting for ConfigMap istio-system/istio-ca-root-cert`);
    env.publish(NEW_ROOT.trimEnd()); // not the same bytes
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.progress()?.message).toBe(GATEWAY_WAIT);
    env.publish(NEW_ROOT);
    expect(await env.reconcile()).toEqual(requeueNow);
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: ["istio-ingressgateway-1"] }] });
    expect(env.api.peek<ConfigMap>("ConfigMap", "istio-system", "istio-ca-root-cert")?.data?.[ROOT_CERT]).toBe(NEW_ROOT);
  });

  it.each<[string, Record<string, string> | undefined, string]>([
    ["other keys (named sorted)", { "root.pem": NEW_ROOT, "ca.crt": NEW_ROOT }, "ca.crt, root.pem"],
    ["no data at all", undefined, "none"],
    ["empty data", {}, "none"],
  ])("a ConfigMap without the configMapKey is a wait that names the keys it has (a wrong key times out with that message): %s", async (_name, data, keys) => {
    const env = new BouncerEnv({ selectors: [GATEWAY], publishedRoot: null });
    env.api.seed<ConfigMap>("ConfigMap", { metadata: { name: "istio-ca-root-cert", namespace: "istio-system" }, ...(data ? { data } : {}) });
    await env.requestBounce(1);
    await env.reconcile(); // reset
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.progress()).toMatchObject({ outcome: "waiting",
      message: `${GATEWAY_WHERE}: waiting for key root-cert.pem in ConfigMap istio-system/istio-ca-root-cert (its keys: ${keys})` });
    expect(env.restarted()).toEqual([]);
  });

  it("an unmatched selector records an empty group, warns once (NoPodsMatched) and the cycle goes on", async () => {
    const env = new BouncerEnv({ selectors: [{ namespace: "apps", labels: { app: "nothing" } }, WORKLOAD] });
    await env.requestBounce(1);
    await env.runCycle();
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: [] }, { bouncedPods: ["web-1", "web-2"] }] });
    expect(env.progress()).toMatchObject({ outcome: "done" });
    expect(env.eventLog()[0]).toEqual(["Warning", "NoPodsMatched", "pods in apps with app=nothing: no pod matches; nothing to restart"]);
    expect(env.eventLog().filter(([, reason]) => reason === "NoPodsMatched")).toHaveLength(1);
  });

  it.each(["evict", "delete"] as const)("%s: a StatefulSet pod recreated under the same name is told apart by uid: not restarted again, and counted as a replacement", async (strategy) => {
    const db: App = { namespace: "apps", app: "db", replicas: 1 };
    const env = new BouncerEnv({ strategy, apps: [db], selectors: [{ namespace: "apps", labels: { app: "db" }, waitForReplicas: 1 }] });
    const original = env.api.peek<Pod>("Pod", "apps", "db-1")!;
    await env.requestBounce(1);
    await env.reconcile(); // reset
    expect(await env.reconcile()).toEqual(requeueNow); // record db-1
    expect(await env.reconcile()).toEqual(requeueNow); // restart db-1
    expect(env.restarted()).toEqual(["apps/db-1"]);
    // The StatefulSet controller recreates db-1 under its name, with a new uid, Ready.
    const gone = env.api.peek<Pod>("Pod", "apps", "db-1")!;
    await env.pods.replace({ ...gone, metadata: { ...gone.metadata, finalizers: [] } });
    env.addPod(db, { ready: true, name: "db-1" });
    const recreated = env.api.peek<Pod>("Pod", "apps", "db-1")!;
    expect(recreated.metadata.uid).not.toBe(original.metadata.uid);
    await env.runCycle();
    expect(env.restarted()).toEqual(["apps/db-1"]); // once
    expect(env.progress()).toMatchObject({ outcome: "done" });
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: ["db-1"] }] });
  });

  // After istiod-1 and istiod-2 were recorded, the uid annotation is replaced: the restart goes by its
  // uids when it is this cycle's and well-formed (a StatefulSet reuses names), else by status's names.
  const BOTH = ["istio-system/istiod-1", "istio-system/istiod-2"];
  it.each<[string, (uid1: string) => string | null, string[]]>([
    ["this cycle's: by uid (only istiod-1's is recorded)", (u) => JSON.stringify({ cycle: "mesh/ic#1", groups: [[u]] }), ["istio-system/istiod-1"]],
    ["this cycle's with a malformed later group: group 0 still by uid", (u) => JSON.stringify({ cycle: "mesh/ic#1", groups: [[u], null] }), ["istio-system/istiod-1"]],
    ["another cycle's: by name", (u) => JSON.stringify({ cycle: "mesh/ic#0", groups: [[u]] }), BOTH],
    ["a group with a non-string: by name", (u) => JSON.stringify({ cycle: "mesh/ic#1", groups: [[u, 7]] }), BOTH],
    ["groups not a list: by name", () => JSON.stringify({ cycle: "mesh/ic#1", groups: "x" }), BOTH],
    ["not JSON: by name", () => "{", BOTH],
    ["missing (written by a version before uids): by name", () => null, BOTH],
  ])("bounced-uids annotation %s", async (_name, annotation, restarted) => {
    const env = new BouncerEnv({ strategy: "delete", selectors: [ISTIOD] });
    await env.requestBounce(1);
    await env.reconcile(); // reset
    await env.reconcile(); // record
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: ["istiod-1", "istiod-2"] }] });
    await env.directives.patchAnnotations(NS, DIRECTIVE, { [BOUNCED_UIDS_ANNOTATION]: annotation(uidOf(env, "istiod-1")) });
    expect(await env.reconcile()).toEqual(requeueNow);
    expect(env.restarted()).toEqual(restarted);
  });

  it("the bounced-uids annotation holds the uids of exactly the recorded pods: not of a pod already terminating", async () => {
    const env = new BouncerEnv({ strategy: "delete", selectors: [ISTIOD] });
    await env.requestBounce(1);
    await env.reconcile(); // reset
    await env.pods.delete("istio-system", "istiod-2"); // terminating (its finalizer) when the group is recorded
    expect(await env.reconcile()).toEqual(requeueNow); // record
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: ["istiod-1"] }] });
    expect(bouncedUids(env)).toEqual({ cycle: "mesh/ic#1", groups: [[uidOf(env, "istiod-1")]] });
  });

  it("a cycle started over (its progress annotation removed) keeps no uid group of the earlier pass beyond what it recorded again", async () => {
    const env = new BouncerEnv();
    await env.requestBounce(1);
    await env.runCycle();
    expect((bouncedUids(env) as { groups: unknown[] }).groups).toHaveLength(3);
    await env.directives.patchAnnotations(NS, DIRECTIVE, { [BOUNCE_PROGRESS_ANNOTATION]: null });
    await env.step();
    expect(await env.reconcile()).toEqual(requeueNow); // reset
    expect(await env.reconcile()).toEqual(requeueNow); // record istiod again
    expect(env.directive().status).toEqual({ podsBounced: [{ bouncedPods: ["istiod-3", "istiod-4"] }] });
    expect(bouncedUids(env)).toEqual({ cycle: "mesh/ic#1", groups: [[uidOf(env, "istiod-3"), uidOf(env, "istiod-4")]] });
  });

  // What counts as a Ready replacement: the pod's Ready condition, whatever else it has.
  it.each<[string, boolean, Pod["status"]]>([
    ["Ready among other True conditions", true, { conditions: ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map((type) => ({ type, status: "True" })) }],
    ["only Ready", true, { conditions: [{ type: "Ready", status: "True" }] }],
    ["scheduled, not Ready", false, { conditions: [{ type: "PodScheduled", status: "True" }, { type: "Ready", status: "False" }] }],
    ["no conditions yet", false, { conditions: [] }],
    ["no status yet", false, undefined],
  ])("a replacement pod with %s counts as Ready: %s", async (_name, ready, status) => {
    const env = new BouncerEnv({ strategy: "delete", selectors: [ISTIOD], apps: [{ namespace: "istio-system", app: "istiod", replicas: 1 }] });
    await env.requestBounce(1);
    await env.reconcile(); // reset
    await env.reconcile(); // record
    expect(await env.reconcile()).toEqual(requeueNow); // restart istiod-1
    env.api.seed<Pod>("Pod", { metadata: { name: "istiod-new", namespace: "istio-system", labels: { app: "istiod" } }, ...(status ? { status } : {}) });
    if (ready) {
      expect(await env.reconcile()).toBeUndefined();
      expect(env.progress()).toMatchObject({ outcome: "done" });
    } else {
      expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
      expect(env.progress()).toMatchObject({ outcome: "waiting", message: `${ISTIOD_WHERE}: 0 of 1 replacement pods Ready` });
    }
  });

  // The chart grants apps/* (ReplicaSets, Deployments, ...) to the rollout strategy only.
  it.each(["evict", "delete"] as const)("%s never reads a workload, even for pods a Deployment owns", async (strategy) => {
    const env = new BouncerEnv({ strategy, selectors: [{ namespace: "istio-system", labels: { app: "istiod" } }], apps: [] });
    seedIstiodDeployment(env);
    await env.requestBounce(1);
    const { errors } = await env.runCycle();
    expect(errors).toEqual([]);
    expect(env.progress()).toMatchObject({ outcome: "done" });
    expect(env.restarted()).toEqual(["istio-system/istiod-6d4-a"]);
    expect(env.api.calls.filter((c) => c.kind in env.workloads)).toEqual([]);
  });

  it("a later selector's error replaces an earlier one's in the progress, with its own BounceFailed", async () => {
    const env = new BouncerEnv({ selectors: [GATEWAY, WORKLOAD], podNamespaces: ["istio-system"], targetData: { "ca-cert.pem": "Q0VSVA==" }, publishedRoot: NEW_ROOT });
    await env.requestBounce(1);
    await env.runCycle();
    const noKey = `${GATEWAY_WHERE}: secret istio-system/cacerts has no key root-cert.pem`;
    expect(env.progress()).toMatchObject({ outcome: "error", message: noKey });
    // The key is added: the gateway is recorded and restarted, then the next selector is refused.
    env.api.seed<Secret>("Secret", { metadata: { name: "cacerts", namespace: "istio-system" }, data: { [ROOT_CERT]: Buffer.from(NEW_ROOT).toString("base64") } });
    expect(await env.reconcile()).toEqual(requeueNow); // record
    expect(await env.reconcile()).toEqual(requeueNow); // restart
    expect(await env.reconcile()).toBeUndefined(); // error
    const refused = `${WEB_WHERE}: namespace apps is not one of --pod-namespaces, where this agent may restart pods; add it (chart: rbac.podNamespaces)`;
    expect(env.progressJson()).toEqual({ cycle: "mesh/ic#1", outcome: "error", message: refused });
    expect(env.eventLog()).toEqual([
      ["Warning", "BounceFailed", noKey],
      ["Normal", "PodsRestarted", `${GATEWAY_WHERE}: restarted Pod/istio-ingressgateway-1 (evict)`],
      ["Warning", "BounceFailed", refused],
    ]);
  });

  it("evictions all blocked: no PodsRestarted, the progress names the budget once, a still-blocked pass warns again and writes nothing", async () => {
    const env = new BouncerEnv({ strategy: "evict", selectors: [ISTIOD] });
    env.evictor.block("istiod-1", 2);
    env.evictor.block("istiod-2", 2);
    await env.requestBounce(1);
    await env.reconcile(); // reset
    await env.reconcile(); // record
    const blocked = `${ISTIOD_WHERE}: eviction of istiod-1, istiod-2 blocked by a PodDisruptionBudget; retrying`;
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.eventLog()).toEqual([["Warning", "BounceWaiting", blocked]]);
    expect(env.progressJson()).toEqual({ cycle: "mesh/ic#1", outcome: "waiting", message: blocked });
    env.writes.length = 0;
    expect(await env.reconcile()).toEqual(requeueAfter(POLL_MS));
    expect(env.writes).toEqual([]);
    expect(env.eventLog()).toEqual([["Warning", "BounceWaiting", blocked], ["Warning", "BounceWaiting", blocked]]);
    expect(env.restarted()).toEqual([]);
  });

  it("no bounce request -> nothing happens (no writes, no Events, no evictions)", async () => {
    const env = new BouncerEnv();
    expect(await env.reconcile()).toBeUndefined();
    expect(await env.reconcile("mesh/no-such-directive")).toBeUndefined();
    expect(env.writes).toEqual([]);
    expect(env.events.events).toEqual([]);
    expect(env.evictor.calls).toEqual([]);
    expect(env.directive().status).toBeUndefined();
    expect(env.directive().metadata.annotations).toBeUndefined();
    expect(KEY).toBe("mesh/istio-pods");
  });
});

describe("rolledOut (kubectl rollout status's test)", () => {
  const w = (spec: Workload["spec"], status: Workload["status"], generation = 2): Workload => ({ metadata: { name: "w", generation }, spec, status });
  it.each<[string, string, Workload, boolean]>([
    // Deployment: every replica updated and available, no old ones left, for the latest spec.
    ["Deployment rolled out", "Deployment", w({ replicas: 2 }, { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }), true],
    ["Deployment whose controller has not seen the new spec", "Deployment", w({ replicas: 2 }, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }), false],
    ["Deployment with one replica not updated", "Deployment", w({ replicas: 2 }, { observedGeneration: 2, replicas: 2, updatedReplicas: 1, availableReplicas: 2 }), false],
    ["Deployment with one replica not available", "Deployment", w({ replicas: 2 }, { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 }), false],
    ["Deployment with an old replica still there (surge)", "Deployment", w({ replicas: 2 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 2 }), false],
    ["Deployment without spec.replicas means 1", "Deployment", w({}, { observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }), true],
    ["Deployment without status", "Deployment", w({ replicas: 1 }, undefined, 0), false],
    // StatefulSet: updated and ready, and the current revision is the update revision.
    ["StatefulSet rolled out", "StatefulSet", w({ replicas: 2 }, { observedGeneration: 2, updatedReplicas: 2, readyReplicas: 2, currentRevision: "r2", updateRevision: "r2" }), true],
    ["StatefulSet still on the old revision", "StatefulSet", w({ replicas: 2 }, { observedGeneration: 2, updatedReplicas: 2, readyReplicas: 2, currentRevision: "r1", updateRevision: "r2" }), false],
    ["StatefulSet with one replica not updated", "StatefulSet", w({ replicas: 2 }, { observedGeneration: 2, updatedReplicas: 1, readyReplicas: 2, currentRevision: "r2", updateRevision: "r2" }), false],
    ["StatefulSet with one replica not ready", "StatefulSet", w({ replicas: 2 }, { observedGeneration: 2, updatedReplicas: 2, readyReplicas: 1, currentRevision: "r2", updateRevision: "r2" }), false],
    ["StatefulSet whose controller has not seen the new spec", "StatefulSet", w({ replicas: 2 }, { observedGeneration: 1, updatedReplicas: 2, readyReplicas: 2, currentRevision: "r2", updateRevision: "r2" }), false],
    // DaemonSet: every scheduled pod updated and available.
    ["DaemonSet rolled out", "DaemonSet", w({}, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 }), true],
    ["DaemonSet with one node not updated", "DaemonSet", w({}, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 2, numberAvailable: 3 }), false],
    ["DaemonSet with one pod not available", "DaemonSet", w({}, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 }), false],
    ["DaemonSet whose controller has not seen the new spec", "DaemonSet", w({}, { observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 }), false],
    // The replica rule is the Deployment's only: a DaemonSet has no spec.replicas, a StatefulSet no availableReplicas check.
    ["DaemonSet is not judged by the Deployment rule", "DaemonSet", w({ replicas: 5 }, { observedGeneration: 2, desiredNumberScheduled: 1, updatedNumberScheduled: 1, numberAvailable: 1 }), true],
    ["StatefulSet is not judged by the Deployment rule", "StatefulSet", w({ replicas: 1 }, { observedGeneration: 2, updatedReplicas: 1, readyReplicas: 1, replicas: 2, currentRevision: "r", updateRevision: "r" }), true],
  ])("%s", (_name, kind, workload, expected) => {
    expect(rolledOut(kind, workload)).toBe(expected);
  });
});

describe("PodBouncerReconciler: what operators see, and cancellation", () => {
  it("every restart and wait is one log line with the Event's level, reason and text", async () => {
    const env = new BouncerEnv({ strategy: "evict", selectors: [{ namespace: "apps", labels: { app: "nothing" } }, ISTIOD] });
    await env.requestBounce(1);
    await env.runCycle();
    const lines = (await env.logRecords()).filter((r) => r.message === "bounce");
    expect(lines.map((l) => [l.level, l.reason, l.detail])).toEqual(
      env.eventLog().map(([type, reason, message]) => [type === "Warning" ? "warn" : "info", reason, message]));
    expect(lines.map((l) => l.level)).toContain("warn"); // NoPodsMatched
    expect(lines.map((l) => l.level)).toContain("info"); // PodsRestarted
    for (const l of lines) expect(l).toMatchObject({ namespace: "mesh", name: "ic", cycle: "mesh/ic#1" });
  });

  // Each step's first write is guarded: a reconcile whose deadline has passed writes nothing.
  it.each<[string, number]>([
    ["a new cycle (podsBounced reset)", 0],
    ["a record", 1],
    ["a restart", 2],
    ["a wait (progress write)", 3],
  ])("an aborted signal at %s writes nothing and rejects", async (_name, passesBefore) => {
    const env = new BouncerEnv({ strategy: "delete", selectors: [ISTIOD] });
    await env.requestBounce(1);
    for (let i = 0; i < passesBefore; i++) await env.reconcile();
    const before = env.writes.length;
    const aborted = AbortSignal.abort(new Error("deadline"));
    await expect(env.reconcile(KEY, aborted)).rejects.toThrow("deadline");
    expect(env.writes.slice(before)).toEqual([]);
    // And the next pass, with a live signal, goes on from the same point.
    await env.runCycle();
    expect(env.progressJson()).toMatchObject({ outcome: "done" });
    expect(env.restarted()).toHaveLength(2);
  });

  it("each planned pass is one debug line naming the directive, the cycle and the step", async () => {
    const env = new BouncerEnv({ strategy: "delete", selectors: [ISTIOD] });
    await env.requestBounce(1);
    await env.runCycle();
    const lines = (await env.logRecords()).filter((r) => r.message === "bounce step");
    expect(lines.map((l) => l.step)).toEqual(["record", "restart", "wait", "done"]);
    for (const l of lines) expect(l).toMatchObject({ level: "debug", namespace: "mesh", name: "istio-pods", cycle: "mesh/ic#1" });
  });

  it("an Event that cannot be written (the IssuedCertificate read fails) is a warn line; the restart goes on", async () => {
    const env = new BouncerEnv({ strategy: "delete", selectors: [ISTIOD] });
    await env.requestBounce(1);
    await env.reconcile(); // reset
    await env.reconcile(); // record
    env.api.failNext({ kind: "IssuedCertificate", verb: "get", error: 500 });
    expect(await env.reconcile()).toEqual(requeueNow);
    expect(env.restarted()).toEqual(["istio-system/istiod-1", "istio-system/istiod-2"]);
    expect(env.events.events).toEqual([]);
    const warned = (await env.logRecords()).filter((r) => r.message === "could not report bounce progress");
    expect(warned).toEqual([expect.objectContaining({ level: "warn", namespace: "mesh", name: "ic", error: expect.stringContaining("injected 500") })]);
  });

  it("rollout: an aborted signal at the restart marks no workload and rejects", async () => {
    const env = new BouncerEnv({ strategy: "rollout", selectors: [ISTIOD], apps: [] });
    seedIstiodDeployment(env);
    await env.requestBounce(1);
    await env.reconcile(); // reset
    await env.reconcile(); // record
    const before = env.writes.length;
    await expect(env.reconcile(KEY, AbortSignal.abort(new Error("deadline")))).rejects.toThrow("deadline");
    expect(env.writes.slice(before)).toEqual([]);
    expect(await env.reconcile()).toEqual(requeueNow);
    expect(env.timeline.filter((t) => t.startsWith("mark "))).toEqual(["mark Deployment/istiod"]);
  });
});
