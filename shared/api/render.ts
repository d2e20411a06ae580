import { stringify } from "yaml";
import { crds } from "./crds";

const HEADER = "# Generated from shared/api/crds.ts by `npm run gen:crds`. Do not edit.\n";

/** File name -> YAML text of every CRD, exactly as committed under charts/cert-agent/crds/. */
export function renderCrdFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [plural, definition] of Object.entries(crds)) {
    files[`${plural}.yaml`] = HEADER + stringify(definition, { lineWidth: 0 });
  }
  return files;
}
