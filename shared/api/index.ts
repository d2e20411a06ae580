export * from "./types";
export * from "./builders";
export { crds } from "./crds";
