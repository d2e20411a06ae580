// Secrets through the ObjectClient interface, so reconcilers treat them like any other object and
// unit tests can swap in the in-memory API.
import { CoreV1Api, KubeConfig, KubernetesObject, PatchStrategy, setHeaderOptions, V1Secret } from "@kubernetes/client-node";
import type { ObjectMeta } from "../api/types";
import { ObjectClient, ObjectList } from "./api";
import { isNotFound } from "./errors";

/** A Secret whose metadata is always present (as it is on anything the API server returns). */
export type Secret = Omit<V1Secret, "metadata"> & { metadata: ObjectMeta };

export class SecretClient implements ObjectClient<Secret> {
  private readonly api: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async get(namespace: string, name: string): Promise<Secret | undefined> {
    try {
      return (await this.api.readNamespacedSecret({ name, namespace })) as Secret;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(namespace: string, body: Secret): Promise<Secret> {
    return (await this.api.createNamespacedSecret({ namespace, body: body as V1Secret })) as Secret;
  }

  async replace(body: Secret): Promise<Secret> {
    const { namespace = "", name = "" } = body.metadata;
    return (await this.api.replaceNamespacedSecret({ name, namespace, body: body as V1Secret })) as Secret;
  }

  /** Secrets have no status; kept for the interface, it replaces the whole object. */
  replaceStatus(body: Secret): Promise<Secret> {
    return this.replace(body);
  }

  async patchAnnotations(namespace: string, name: string, annotations: Record<string, string | null>, resourceVersion?: string): Promise<Secret> {
    const body = { metadata: { annotations, ...(resourceVersion ? { resourceVersion } : {}) } };
    return (await this.api.patchNamespacedSecret({ name, namespace, body },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch))) as Secret;
  }

  async delete(namespace: string, name: string): Promise<boolean> {
    try {
      await this.api.deleteNamespacedSecret({ name, namespace });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(namespace?: string, labelSelector?: string, fieldSelector?: string): Promise<ObjectList<Secret>> {
    const selector = { ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) };
    const list = namespace
      ? await this.api.listNamespacedSecret({ namespace, ...selector })
      : await this.api.listSecretForAllNamespaces(selector);
    return list as ObjectList<Secret>;
  }

  /** Watch path for an informer over one namespace or all. */
  watchPath(namespace?: string): string {
    return namespace ? `/api/v1/namespaces/${namespace}/secrets` : "/api/v1/secrets";
  }
}

/** A watched Secret without its data (and managedFields): what the mapping to its owner needs. */
export function dropSecretData(secret: KubernetesObject): void {
  delete (secret as { data?: unknown }).data;
  delete (secret as { stringData?: unknown }).stringData;
  if (secret.metadata) delete secret.metadata.managedFields;
}
