// Installs CustomResourceDefinitions from YAML/JSON files and waits until they are usable: the CRD
// reports Established and its resources show up in discovery (the same two checks envtest makes;
// Established alone can precede discovery by a moment, and clients that look resources up via
// discovery, kubectl included, would then fail).
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { HttpError, requestJson, waitFor, type TlsClient } from "./http";

interface Crd {
  kind?: string;
  metadata: { name: string; resourceVersion?: string };
  spec: { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

const CRDS_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/** All CRD documents in dir's *.yaml/*.yml/*.json files (other kinds are ignored). */
export function readCrds(dir: string): Crd[] {
  if (!fs.existsSync(dir)) return [];
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
  const crds: Crd[] = [];
  for (const f of files) {
    const file = path.join(dir, f);
    for (const doc of parseAllDocuments(fs.readFileSync(file, "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const obj = doc.toJSON() as Crd | null;
      if (obj?.kind === "CustomResourceDefinition") crds.push(obj);
    }
  }
  return crds;
}

/** Creates (or replaces) every CRD found in dir and waits until all are served. Returns their names. */
export async function installCrds(server: string, tls: TlsClient, dir: string, timeoutMs = 30_000): Promise<string[]> {
  const crds = readCrds(dir);
  await Promise.all(crds.map((crd) => createOrReplace(server, tls, crd)));
  await Promise.all(crds.map((crd) => waitServed(server, tls, crd, timeoutMs)));
  return crds.map((c) => c.metadata.name);
}

async function createOrReplace(server: string, tls: TlsClient, crd: Crd): Promise<void> {
  try {
    await requestJson(server + CRDS_PATH, { method: "POST", body: crd, tls });
  } catch (e) {
    if (!(e instanceof HttpError) || e.status !== 409) throw e;
    // Already there (e.g. a restarted API server on the same etcd): replace it with this version.
    const url = `${server}${CRDS_PATH}/${crd.metadata.name}`;
    const existing = await requestJson<Crd>(url, { tls });
    const body = { ...crd, metadata: { ...crd.metadata, resourceVersion: existing.metadata.resourceVersion } };
    await requestJson(url, { method: "PUT", body, tls });
  }
}

async function waitServed(server: string, tls: TlsClient, crd: Crd, timeoutMs: number): Promise<void> {
  const name = crd.metadata.name;
  await waitFor(
    async () => {
      const got = await requestJson<Crd>(`${server}${CRDS_PATH}/${name}`, { tls });
      return (got.status?.conditions ?? []).some((c) => c.type === "Established" && c.status === "True");
    },
    { timeoutMs, describe: (err) => `CRD ${name} not Established after ${timeoutMs}ms ${err}` },
  );
  for (const v of crd.spec.versions.filter((v) => v.served)) {
    const gv = `${server}/apis/${crd.spec.group}/${v.name}`;
    await waitFor(
      async () => {
        const list = await requestJson<{ resources?: { name: string }[] }>(gv, { tls });
        return (list.resources ?? []).some((r) => r.name === crd.spec.names.plural);
      },
      { timeoutMs, describe: (err) => `${crd.spec.names.plural} not in discovery at ${gv} after ${timeoutMs}ms ${err}` },
    );
  }
}
