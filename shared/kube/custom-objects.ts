// Typed access to one namespaced custom resource through client-node's generic CustomObjectsApi.
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { GROUP, ResourceInfo, VERSION } from "../api/types";
import { KubeObject, ObjectClient, ObjectList } from "./api";
import { isNotFound } from "./errors";

export type { KubeObject, ObjectList } from "./api";

export class CustomResourceClient<T extends KubeObject> implements ObjectClient<T> {
  readonly api: CustomObjectsApi;

  constructor(
    kc: KubeConfig,
    readonly info: ResourceInfo,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  private base(namespace: string) {
    return { group: GROUP, version: VERSION, namespace, plural: this.info.plural };
  }

  async get(namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({ ...this.base(namespace), name })) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(namespace: string, body: T): Promise<T> {
    return (await this.api.createNamespacedCustomObject({ ...this.base(namespace), body })) as T;
  }

  async replace(body: T): Promise<T> {
    const { namespace = "", name = "" } = body.metadata;
    return (await this.api.replaceNamespacedCustomObject({ ...this.base(namespace), name, body })) as T;
  }

  async replaceStatus(body: T): Promise<T> {
    const { namespace = "", name = "" } = body.metadata;
    return (await this.api.replaceNamespacedCustomObjectStatus({ ...this.base(namespace), name, body })) as T;
  }

  async patchAnnotations(namespace: string, name: string, annotations: Record<string, string | null>, resourceVersion?: string): Promise<T> {
    const body = { metadata: { annotations, ...(resourceVersion ? { resourceVersion } : {}) } };
    return (await this.api.patchNamespacedCustomObject({ ...this.base(namespace), name, body },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch))) as T;
  }

  async delete(namespace: string, name: string): Promise<boolean> {
    try {
      await this.api.deleteNamespacedCustomObject({ ...this.base(namespace), name });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(namespace?: string, labelSelector?: string, fieldSelector?: string): Promise<ObjectList<T>> {
    const common = { group: GROUP, version: VERSION, plural: this.info.plural, ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) };
    const list = namespace
      ? await this.api.listNamespacedCustomObject({ ...common, namespace })
      : await this.api.listClusterCustomObject(common);
    return list as ObjectList<T>;
  }

  /** Watch path for an informer over one namespace or all. */
  watchPath(namespace?: string): string {
    return namespace
      ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${this.info.plural}`
      : `/apis/${GROUP}/${VERSION}/${this.info.plural}`;
  }
}
