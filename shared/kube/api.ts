// The few API operations our reconcilers use, as one interface per resource. The real
// implementations (custom-objects.ts, secrets.ts) call the API server through client-node; the
// in-memory one (fake.ts) lets reconciler unit tests run with resourceVersions, 404s, 409s and
// injected faults but without a server.
import type { ObjectMeta } from "../api/types";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface ObjectList<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface ObjectClient<T extends KubeObject> {
  /** The object, or undefined when it does not exist. */
  get(namespace: string, name: string): Promise<T | undefined>;
  /** Fails with 409 (AlreadyExists) when the name is taken. */
  create(namespace: string, body: T): Promise<T>;
  /** Replaces everything but status; fails with 409 when body.metadata.resourceVersion is stale. */
  replace(body: T): Promise<T>;
  /** Replaces status only (never bumps generation); fails with 409 on a stale resourceVersion. */
  replaceStatus(body: T): Promise<T>;
  /**
   * Merges annotations into metadata (a null value removes one). With a resourceVersion the write is
   * guarded and fails with 409 when it is stale. Metadata writes never bump generation.
   */
  patchAnnotations(namespace: string, name: string, annotations: Record<string, string | null>, resourceVersion?: string): Promise<T>;
  /** Deletes; false when it did not exist. */
  delete(namespace: string, name: string): Promise<boolean>;
  /** One namespace, or all namespaces when namespace is undefined; selectors as the API server takes them. */
  list(namespace?: string, labelSelector?: string, fieldSelector?: string): Promise<ObjectList<T>>;
}
