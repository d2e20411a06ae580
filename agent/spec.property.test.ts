// readIntent, the pure spec reader, on arbitrary IssuedCertificates (property-based, seeded): it never
// throws anything but InvalidSpecError, every host it accepts is one validateHost accepts, and every
// message it writes (into status, an Event and the log) is one printable line of at most 1 KB.
import fc from "fast-check";
import { validateHost } from "../shared/pki";
import { propertyRuns, seeded } from "../shared/testing/property";
import { hasControlCharacters, MAX_FOREIGN_TEXT } from "../shared/text/bounded";
import { InvalidSpecError, isNamespace, readIntent } from "./spec";
import { hostileIssuedCertificates } from "./testing/hostile-specs";

const issuedCertificates = hostileIssuedCertificates({ name: "ic", namespace: "mesh" });

describe(seeded("readIntent on arbitrary IssuedCertificates"), () => {
  it("accepts only valid hosts and a valid target, and refuses with InvalidSpecError alone, in one printable line of at most 1 KB", () => {
    let accepted = 0;
    fc.assert(fc.property(issuedCertificates, (ic) => {
      let intent;
      try {
        intent = readIntent(ic);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidSpecError);
        const message = (err as Error).message;
        expect(hasControlCharacters(message)).toBe(false);
        expect(message.length).toBeLessThanOrEqual(MAX_FOREIGN_TEXT);
        return;
      }
      accepted++;
      expect(intent.hosts.length).toBeGreaterThan(0);
      for (const host of intent.hosts) expect(validateHost(host)).toBeUndefined();
      expect(isNamespace(intent.target.namespace)).toBe(true);
      expect(`${intent.target.namespace}/${intent.target.name}`).not.toBe("mesh/ic");
      expect(hasControlCharacters(intent.org)).toBe(false);
    }), propertyRuns(4_000));
    // The generators reach the accepting side too (else the host checks above would prove nothing).
    expect(accepted).toBeGreaterThan(400);
  });
});
