// planBounce, pure: every step of one bounce cycle as table rows (selectors in spec order, record
// before restart, restart only what was recorded and is not restarted yet, strategies, waits).
import type { BounceSelector } from "../../shared/api/types";
import { BounceStep, describeSelector, OwnerView, planBounce, PodView, SelectorView, Strategy } from "./plan";

const ISTIOD: BounceSelector = { namespace: "istio-system", labels: { app: "istiod" }, waitForReplicas: 1 };
const GATEWAY: BounceSelector = { namespace: "istio-system", labels: { app: "istio-ingressgateway" } };
const WEB: BounceSelector = { namespace: "apps", labels: { app: "web" } };

const pod = (name: string, o: Partial<PodView> = {}): PodView => ({ name, ready: true, terminating: false, ...o });
const owner = (id: string, o: Partial<OwnerView> = {}): OwnerView => ({ id, marked: false, rolledOut: true, ...o });
const view = (selector: BounceSelector, o: Partial<SelectorView> = {}): SelectorView => ({ selector, pods: [], owners: [], ...o });
/** A selector whose group this cycle is fully bounced and replaced. */
const finished = (selector: BounceSelector): SelectorView => view(selector, { bounced: ["old-0"], pods: [pod("new-0")] });

type Row = [string, SelectorView[], Strategy, BounceStep];

const rows: Row[] = [
  // Record: the first selector not bounced yet records its live pods, sorted, before anything restarts.
  ["the first selector not bounced records its non-terminating pods, sorted",
    [view(ISTIOD, { pods: [pod("istiod-b"), pod("istiod-c", { terminating: true }), pod("istiod-a", { ready: false })] })], "evict",
    { step: "record", index: 0, pods: ["istiod-a", "istiod-b"] }],
  ["the record step is the same for every strategy (rollout)",
    [view(ISTIOD, { pods: [pod("istiod-b", { owner: "Deployment/istiod" }), pod("istiod-a", { owner: "Deployment/istiod" })], owners: [owner("Deployment/istiod")] })], "rollout",
    { step: "record", index: 0, pods: ["istiod-a", "istiod-b"] }],
  ["an unmatched selector records an empty group",
    [view(WEB)], "delete",
    { step: "record", index: 0, pods: [] }],
  ["an empty recorded group restarts nothing and the pass proceeds to the next selector",
    [view(WEB, { bounced: [] }), view(GATEWAY, { pods: [pod("gw-0")] })], "delete",
    { step: "record", index: 1, pods: ["gw-0"] }],
  ["an empty recorded group with waitForReplicas waits for replacement pods that may never come (BounceTimedOut upstream)",
    [view({ ...WEB, waitForReplicas: 2 }, { bounced: [] })], "delete",
    { step: "wait", index: 0, message: "pods in apps with app=web: 0 of 2 replacement pods Ready" }],

  // Restart (evict, delete): exactly the recorded pods still alive.
  ["delete: recorded and alive pods are restarted, exactly those",
    [view(WEB, { bounced: ["web-a", "web-b"], pods: [pod("web-b"), pod("web-a"), pod("web-new")] })], "delete",
    { step: "restart", index: 0, pods: ["web-a", "web-b"], owners: [] }],
  ["evict: recorded and alive pods are restarted, exactly those",
    [view(WEB, { bounced: ["web-a", "web-b"], pods: [pod("web-b"), pod("web-a"), pod("web-new")] })], "evict",
    { step: "restart", index: 0, pods: ["web-a", "web-b"], owners: [] }],
  ["recorded pods already terminating or gone are not restarted again (a crash mid-restart)",
    [view(WEB, { bounced: ["web-a", "web-b", "web-c"], pods: [pod("web-a", { terminating: true }), pod("web-c")] })], "evict",
    { step: "restart", index: 0, pods: ["web-c"], owners: [] }],
  ["recorded pods all terminating or gone: nothing to restart, the next selector goes on",
    [view(WEB, { bounced: ["web-a", "web-b"], pods: [pod("web-a", { terminating: true }), pod("web-new")] }), view(GATEWAY, { pods: [pod("gw-0")] })], "delete",
    { step: "record", index: 1, pods: ["gw-0"] }],
  ["evict/delete ignore owners (pods go one by one)",
    [view(WEB, { bounced: ["web-a"], pods: [pod("web-a", { owner: "Deployment/web" })], owners: [owner("Deployment/web")] })], "delete",
    { step: "restart", index: 0, pods: ["web-a"], owners: [] }],

  // Rollout: through the owners; bare pods fall back to eviction.
  ["rollout: owners not marked are restarted; bare pods go in the evict list",
    [view(WEB, {
      bounced: ["bare", "web-a", "web-b"],
      pods: [pod("web-a", { owner: "Deployment/web" }), pod("web-b", { owner: "StatefulSet/db" }), pod("bare")],
      owners: [owner("StatefulSet/db"), owner("Deployment/web")],
    })], "rollout",
    { step: "restart", index: 0, pods: ["bare"], owners: ["Deployment/web", "StatefulSet/db"] }],
  ["rollout: several bare pods go in the evict list sorted",
    [view(WEB, { bounced: ["bare-a", "bare-b", "bare-c"], pods: [pod("bare-c"), pod("bare-a"), pod("bare-b")] })], "rollout",
    { step: "restart", index: 0, pods: ["bare-a", "bare-b", "bare-c"], owners: [] }],
  ["rollout: only the owners not marked yet",
    [view(WEB, {
      bounced: ["web-a", "web-b"],
      pods: [pod("web-a", { owner: "Deployment/web" }), pod("web-b", { owner: "StatefulSet/db" })],
      owners: [owner("Deployment/web", { marked: true, rolledOut: false }), owner("StatefulSet/db")],
    })], "rollout",
    { step: "restart", index: 0, pods: [], owners: ["StatefulSet/db"] }],
  ["rollout: owners marked but not rolled out -> wait naming them",
    [view(WEB, {
      bounced: ["web-a", "db-0"],
      pods: [pod("web-a", { owner: "Deployment/web" }), pod("db-0", { owner: "StatefulSet/db" }), pod("api-0", { owner: "Deployment/api" })],
      owners: [owner("Deployment/web", { marked: true, rolledOut: false }), owner("StatefulSet/db", { marked: true, rolledOut: false }), owner("Deployment/api", { marked: true })],
    }), view(GATEWAY, { pods: [pod("gw-0")] })], "rollout",
    { step: "wait", index: 0, message: "pods in apps with app=web: waiting for the rollout of Deployment/web, StatefulSet/db" }],
  ["rollout: owners marked and rolled out -> the next selector",
    [view(WEB, { bounced: ["web-a"], pods: [pod("web-x", { owner: "Deployment/web" })], owners: [owner("Deployment/web", { marked: true })] }), view(GATEWAY, { pods: [pod("gw-0")] })], "rollout",
    { step: "record", index: 1, pods: ["gw-0"] }],
  ["rollout: a recorded bare pod already evicted is not evicted again",
    [view(WEB, { bounced: ["bare"], pods: [pod("bare", { terminating: true })] })], "rollout",
    { step: "done" }],
  ["evict: rollout state of owners is not waited for",
    [view(WEB, { bounced: ["web-a"], pods: [pod("web-b", { owner: "Deployment/web" })], owners: [owner("Deployment/web", { rolledOut: false })] })], "evict",
    { step: "done" }],

  // waitForReplicas: Ready replacement pods, not among the recorded ones.
  ["waitForReplicas: no replacement yet -> wait 0 of M",
    [view(ISTIOD, { bounced: ["istiod-a"], pods: [pod("istiod-a", { terminating: true })] })], "evict",
    { step: "wait", index: 0, message: "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready" }],
  ["waitForReplicas: replacements not Ready, terminating, or among the recorded do not count -> wait N of M",
    [view({ ...ISTIOD, waitForReplicas: 3 }, {
      bounced: ["istiod-a", "istiod-b"],
      pods: [pod("istiod-a", { terminating: true }), pod("istiod-c"), pod("istiod-d", { ready: false }), pod("istiod-e", { terminating: true })],
    })], "delete",
    { step: "wait", index: 0, message: "pods in istio-system with app=istiod: 1 of 3 replacement pods Ready" }],
  ["waitForReplicas: a recorded pod still Ready is not a replacement (blocked eviction retried first)",
    [view(ISTIOD, { bounced: ["istiod-a"], pods: [pod("istiod-a")] })], "evict",
    { step: "restart", index: 0, pods: ["istiod-a"], owners: [] }],
  ["waitForReplicas: enough Ready replacements -> the next selector",
    [view(ISTIOD, { bounced: ["istiod-a"], pods: [pod("istiod-z")] }), view(GATEWAY, { pods: [pod("gw-0")] })], "evict",
    { step: "record", index: 1, pods: ["gw-0"] }],

  // Recorded uids, when known, tell a recorded pod from its same-named replacement (a StatefulSet).
  ["uids: a same-named replacement (another uid) is not restarted and counts as a Ready replacement",
    [view(ISTIOD, { bounced: ["istiod-0"], bouncedUids: ["uid-old"], pods: [pod("istiod-0", { uid: "uid-new" })] })], "evict",
    { step: "done" }],
  ["uids: the recorded pod itself (same uid) still alive is restarted",
    [view(ISTIOD, { bounced: ["istiod-0"], bouncedUids: ["uid-old"], pods: [pod("istiod-0", { uid: "uid-old" })] })], "evict",
    { step: "restart", index: 0, pods: ["istiod-0"], owners: [] }],
  ["uids: a pod recorded without a uid (recorded as \"\", as the reconciler writes it) is still recognised and restarted",
    [view(WEB, { bounced: ["web-a"], bouncedUids: [""], pods: [pod("web-a")] })], "delete",
    { step: "restart", index: 0, pods: ["web-a"], owners: [] }],

  // rootCertSync: checked before the group is recorded.
  ["rootCertSync waiting -> wait, before recording",
    [finished(ISTIOD), view(GATEWAY, { pods: [pod("gw-0")], rootSync: { state: "waiting", message: "waiting for ConfigMap istio-system/istio-ca-root-cert" } })], "evict",
    { step: "wait", index: 1, message: "pods in istio-system with app=istio-ingressgateway: waiting for ConfigMap istio-system/istio-ca-root-cert" }],
  ["a selector refused (not one of --pod-namespaces) -> error, recorded or not",
    [view(WEB, { pods: [], refused: "namespace apps is not one of --pod-namespaces" })], "evict",
    { step: "error", index: 0, message: "pods in apps with app=web: namespace apps is not one of --pod-namespaces" }],
  ["rootCertSync error -> error",
    [view(GATEWAY, { pods: [pod("gw-0")], rootSync: { state: "error", message: "secret istio-system/cacerts has no key root-cert.pem" } })], "evict",
    { step: "error", index: 0, message: "pods in istio-system with app=istio-ingressgateway: secret istio-system/cacerts has no key root-cert.pem" }],
  ["rootCertSync in sync -> record",
    [view(GATEWAY, { pods: [pod("gw-0")], rootSync: { state: "in-sync" } })], "evict",
    { step: "record", index: 0, pods: ["gw-0"] }],
  ["rootCertSync is not looked at again once the group is recorded",
    [view(GATEWAY, { bounced: ["gw-0"], pods: [pod("gw-0")], rootSync: { state: "waiting", message: "stale" } })], "evict",
    { step: "restart", index: 0, pods: ["gw-0"], owners: [] }],

  // Selectors in spec order: a waiting selector stops the pass.
  ["a waiting first selector stops the pass: the second is never recorded",
    [view(ISTIOD, { bounced: ["istiod-a"], pods: [] }), view(GATEWAY, { pods: [pod("gw-0")] }), view(WEB, { pods: [pod("web-a")] })], "evict",
    { step: "wait", index: 0, message: "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready" }],
  ["a first selector not restarted yet stops the pass",
    [view(ISTIOD, { bounced: ["istiod-a"], pods: [pod("istiod-a")] }), view(GATEWAY, { pods: [pod("gw-0")] })], "delete",
    { step: "restart", index: 0, pods: ["istiod-a"], owners: [] }],
  ["an error in a later selector waits for the earlier ones",
    [view(ISTIOD, { bounced: ["istiod-a"], pods: [] }), view(GATEWAY, { rootSync: { state: "error", message: "bad" } })], "evict",
    { step: "wait", index: 0, message: "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready" }],
  ["the third selector after two finished ones",
    [finished(ISTIOD), finished(GATEWAY), view(WEB, { pods: [pod("web-a")] })], "delete",
    { step: "record", index: 2, pods: ["web-a"] }],
  ["all selectors done -> done",
    [finished(ISTIOD), finished(GATEWAY), finished(WEB)], "rollout",
    { step: "done" }],
  ["no selectors -> done",
    [], "rollout",
    { step: "done" }],
];

describe("planBounce", () => {
  it.each(rows)("%s", (_name, views, strategy, expected) => {
    expect(planBounce(views, strategy)).toEqual(expected);
  });

  it("does not change its input", () => {
    const views = [view(WEB, { bounced: ["web-b", "web-a"], pods: [pod("web-b"), pod("web-a")] })];
    const before = JSON.stringify(views);
    planBounce(views, "delete");
    expect(JSON.stringify(views)).toBe(before);
  });
});

describe("describeSelector", () => {
  it.each<[BounceSelector, string]>([
    [{ namespace: "istio-system", labels: { app: "istiod", rev: "1-20" } }, "pods in istio-system with app=istiod,rev=1-20"],
    [{ namespace: "apps" }, "pods in apps"],
    [{}, "pods in (no namespace)"],
  ])("%j -> %s", (selector, text) => {
    expect(describeSelector(selector)).toBe(text);
  });
});
