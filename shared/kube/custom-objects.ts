// Typed access to one namespaced custom resource through client-node's generic CustomObjectsApi.
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { GROUP, ObjectMeta, ResourceInfo, VERSION } from "../api/types";
import { isNotFound } from "./errors";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface ObjectList<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export class CustomResourceClient<T extends KubeObject> {
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

  /** The object, or undefined when it does not exist. */
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

  /** Replaces spec/metadata; fails with 409 when body.metadata.resourceVersion is stale. */
  async replace(body: T): Promise<T> {
    const { namespace = "", name = "" } = body.metadata;
    return (await this.api.replaceNamespacedCustomObject({ ...this.base(namespace), name, body })) as T;
  }

  /** Replaces status only (does not bump generation); fails with 409 on a stale resourceVersion. */
  async replaceStatus(body: T): Promise<T> {
    const { namespace = "", name = "" } = body.metadata;
    return (await this.api.replaceNamespacedCustomObjectStatus({ ...this.base(namespace), name, body })) as T;
  }

  async delete(namespace: string, name: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({ ...this.base(namespace), name });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Lists one namespace, or all namespaces when namespace is undefined (informer list function). */
  async list(namespace?: string, labelSelector?: string): Promise<ObjectList<T>> {
    const common = { group: GROUP, version: VERSION, plural: this.info.plural, ...(labelSelector ? { labelSelector } : {}) };
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
