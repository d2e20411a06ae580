// Writes charts/cert-agent/crds/<plural>.yaml from crds.ts. Run with `npm run gen:crds`.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "./render";

const dir = join(__dirname, "..", "..", "..", "charts", "cert-agent", "crds");
mkdirSync(dir, { recursive: true });
for (const [file, text] of Object.entries(renderCrdFiles())) {
  writeFileSync(join(dir, file), text);
  console.log(`wrote ${join(dir, file)}`);
}
