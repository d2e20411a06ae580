import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "./render";

describe("committed CRD manifests", () => {
  const dir = join(__dirname, "..", "..", "charts", "cert-agent", "crds");

  it("are exactly what shared/api/crds.ts generates (run `npm run gen:crds` after changing it)", () => {
    const expected = renderCrdFiles();
    expect(readdirSync(dir).sort()).toEqual(Object.keys(expected).sort());
    for (const [file, text] of Object.entries(expected)) {
      expect(readFileSync(join(dir, file), "utf8")).toBe(text);
    }
  });
});
