// Any built-in kind (Pods, ConfigMaps, Deployments, ...) through the ObjectClient interface, on
// client-node's generic KubernetesObjectApi: the pod bouncer reads and patches several kinds and
// its unit tests swap in the in-memory API.
import { KubeConfig, KubernetesObject, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { KubeObject, ObjectClient, ObjectList } from "./api";
import { isNotFound } from "./errors";

export class GenericClient<T extends KubeObject> implements ObjectClient<T> {
  private readonly api: KubernetesObjectApi;

  constructor(
    kc: KubeConfig,
    private readonly apiVersion: string,
    private readonly kind: string,
    /** Plural resource name, for watch paths. */
    private readonly plural: string,
  ) {
    this.api = KubernetesObjectApi.makeApiClient(kc);
  }

  private header(namespace: string, name: string) {
    return { apiVersion: this.apiVersion, kind: this.kind, metadata: { namespace, name } };
  }

  private typed(body: T): KubernetesObject {
    return { ...body, apiVersion: this.apiVersion, kind: this.kind } as KubernetesObject;
  }

  async get(namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.api.read(this.header(namespace, name))) as unknown as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(namespace: string, body: T): Promise<T> {
    return (await this.api.create(this.typed({ ...body, metadata: { ...body.metadata, namespace } }))) as unknown as T;
  }

  async replace(body: T): Promise<T> {
    return (await this.api.replace(this.typed(body))) as unknown as T;
  }

  replaceStatus(): Promise<T> {
    return Promise.reject(new Error(`GenericClient: status writes of ${this.kind} are not supported`));
  }

  async patchAnnotations(namespace: string, name: string, annotations: Record<string, string | null>, resourceVersion?: string): Promise<T> {
    const body = { ...this.header(namespace, name), metadata: { namespace, name, annotations, ...(resourceVersion ? { resourceVersion } : {}) } };
    return (await this.api.patch(body as KubernetesObject, undefined, undefined, undefined, undefined, PatchStrategy.MergePatch)) as unknown as T;
  }

  async delete(namespace: string, name: string): Promise<boolean> {
    try {
      await this.api.delete(this.header(namespace, name));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(namespace?: string, labelSelector?: string, fieldSelector?: string): Promise<ObjectList<T>> {
    return (await this.api.list(this.apiVersion, this.kind, namespace, undefined, undefined, undefined, fieldSelector, labelSelector)) as unknown as ObjectList<T>;
  }

  /** Watch path for an informer over one namespace or all. */
  watchPath(namespace?: string): string {
    const group = this.apiVersion.includes("/") ? `/apis/${this.apiVersion}` : `/api/${this.apiVersion}`;
    return namespace ? `${group}/namespaces/${namespace}/${this.plural}` : `${group}/${this.plural}`;
  }
}

/**
 * An informer's object reduced to apiVersion, kind and metadata (without managedFields), in place: for
 * watches whose events are only mapped by name, namespace and labels (a whole cluster's pods would
 * otherwise stay in memory with their specs and statuses).
 */
export function keepMetadataOnly(obj: KubernetesObject): void {
  for (const key of Object.keys(obj)) if (key !== "apiVersion" && key !== "kind" && key !== "metadata") delete (obj as Record<string, unknown>)[key];
  dropManagedFields(obj);
}

/**
 * An informer's object without metadata.managedFields, in place: the server-side-apply bookkeeping is
 * often larger than the object, and nothing of ours reads it (an update that omits it leaves it as is).
 */
export function dropManagedFields(obj: KubernetesObject): void {
  if (obj.metadata) delete obj.metadata.managedFields;
}
