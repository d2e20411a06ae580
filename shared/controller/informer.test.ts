// ResilientInformer's trim over client-node's real cache (ListWatch), fed by a scripted watch: what a
// source's trim drops is gone from the cached objects, listed and watched alike.
import { KubeConfig, KubernetesObject, ListWatch, V1Secret, Watch } from "@kubernetes/client-node";
import { PassThrough } from "node:stream";
import { keepMetadataOnly } from "../kube/generic";
import { dropSecretData } from "../kube/secrets";
import { FakeClock } from "./clock";
import { ResilientInformer } from "./informer";
import { createLogger } from "./logger";

const secret = (name: string): V1Secret => ({
  metadata: { name, namespace: "istio-system", resourceVersion: "1", annotations: { "cert-agent.io/issued-certificate": "mesh/ic" },
    managedFields: [{ manager: "cert-agent" }] },
  data: { "ca-key.pem": Buffer.from("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n").toString("base64") },
});

describe("ResilientInformer trim (SourceSpec.trim)", () => {
  it("drops a Secret's data from the cache for listed and watched objects, before any handler sees them", async () => {
    let emit!: (phase: string, obj: KubernetesObject) => void;
    const watch = {
      watch: async (_path: string, _query: unknown, callback: (phase: string, obj: KubernetesObject) => void) => {
        emit = callback;
        return new AbortController();
      },
    } as unknown as Watch;
    const log = createLogger("error", new PassThrough().resume());
    const informer = new ResilientInformer<KubernetesObject>({
      name: "secrets/istio-system",
      kc: new KubeConfig(),
      path: "/api/v1/namespaces/istio-system/secrets",
      list: async () => ({ metadata: { resourceVersion: "1" }, items: [secret("listed")] }),
      log,
      clock: new FakeClock(),
      makeInformer: ((_kc: KubeConfig, path: string, list: never) => new ListWatch(path, watch, list, false)) as never,
      trim: dropSecretData,
    });
    const seen: unknown[] = [];
    informer.addHandler((obj) => seen.push((obj as V1Secret).data));
    await informer.start();
    emit("ADDED", secret("watched"));
    emit("MODIFIED", { ...secret("listed"), metadata: { ...secret("listed").metadata, resourceVersion: "2" } });

    const cached = informer.list() as V1Secret[];
    expect(cached.map((s) => s.metadata!.name).sort()).toEqual(["listed", "watched"]);
    for (const s of cached) {
      expect(s.data).toBeUndefined();
      expect(s.metadata!.managedFields).toBeUndefined();
      expect(s.metadata!.annotations).toEqual({ "cert-agent.io/issued-certificate": "mesh/ic" });
    }
    expect(JSON.stringify(cached)).not.toContain("PRIVATE");
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.every((d) => d === undefined)).toBe(true);
    await informer.stop();
  });
});

describe("keepMetadataOnly (the bouncer's pod and ConfigMap watches)", () => {
  it("keeps apiVersion, kind and metadata without managedFields; drops spec, status and data", () => {
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "istiod-1", namespace: "istio-system", labels: { app: "istiod" }, managedFields: [{}] },
      spec: { containers: [{ name: "c" }] }, status: { phase: "Running" } };
    const map = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "istio-ca-root-cert", namespace: "apps" }, data: { "root-cert.pem": "x" }, binaryData: {} };
    keepMetadataOnly(pod);
    keepMetadataOnly(map);
    expect(pod).toEqual({ apiVersion: "v1", kind: "Pod", metadata: { name: "istiod-1", namespace: "istio-system", labels: { app: "istiod" } } });
    expect(map).toEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "istio-ca-root-cert", namespace: "apps" } });
  });
});
