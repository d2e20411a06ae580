import { boundedText, hasControlCharacters, MAX_FOREIGN_TEXT } from "./bounded";

describe("hasControlCharacters", () => {
  it.each([["plain", false], ["Zertifikat für Ö", false], ["a\u0000", true], ["\n", true], ["\u001b[0m", true], ["\u0085", true], ["\u2028", true]])("%j -> %s", (text, expected) => {
    expect(hasControlCharacters(text)).toBe(expected);
    expect(hasControlCharacters(text)).toBe(expected); // the global regex keeps no state between calls
  });
});

describe("boundedText", () => {
  it.each([
    ["plain text is kept", "signing secret mesh/root-ca not found", "signing secret mesh/root-ca not found"],
    ["a NUL and an ESC are escaped", "a\u0000b\u001b[31mc", "a\\u0000b\\u001b[31mc"],
    ["newlines and tabs become escapes: one line", "line 1\nline 2\tend\r", "line 1\\u000aline 2\\u0009end\\u000d"],
    ["DEL, C1 controls and line separators are escaped", "x\u007fy\u0085z\u2028", "x\\u007fy\\u0085z\\u2028"],
    ["non-ASCII letters are kept", "Zertifikat für Ö", "Zertifikat für Ö"],
  ])("%s", (_name, input, expected) => {
    expect(boundedText(input)).toBe(expected);
  });

  it("cuts a 500 KB text to 1024 characters, saying how much was left out", () => {
    const out = boundedText("e".repeat(500_000));
    expect(out).toHaveLength(MAX_FOREIGN_TEXT);
    expect(out).toMatch(/^e+ \.\.\. \(498\d{3} more characters\)$/);
    expect(out.endsWith(` ... (${500_000 - MAX_FOREIGN_TEXT} more characters)`)).toBe(true);
  });

  it("keeps a text of exactly the bound and counts escapes in it", () => {
    expect(boundedText("a".repeat(1024))).toBe("a".repeat(1024));
    // Ten NULs are 60 characters once escaped: over a bound of 40, cut.
    expect(boundedText("\u0000".repeat(10), 40)).toBe("\\u0000\\u0000\\u0 ... (20 more characters)");
  });
});
