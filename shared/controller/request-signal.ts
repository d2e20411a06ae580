// The reconcile's AbortSignal, carried to every API request made on its behalf without threading it
// through each client call: the controller runs a reconcile inside runWithSignal(), and the
// KubeConfig the clients share (ObservedKubeConfig) puts currentSignal() on each request. So a
// reconcile that passes its deadline aborts its hung request at once, and its key is free again,
// instead of waiting for the HTTP client's own timeout (minutes) on a dead connection.
import { AsyncLocalStorage } from "node:async_hooks";

const storage = new AsyncLocalStorage<AbortSignal>();

/** Runs fn (and everything it awaits) with `signal` as the current request signal. */
export function runWithSignal<T>(signal: AbortSignal, fn: () => T): T {
  return storage.run(signal, fn);
}

/** The signal of the reconcile this code runs for, if any. */
export function currentSignal(): AbortSignal | undefined {
  return storage.getStore();
}
