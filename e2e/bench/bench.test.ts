// The benchmark's pure parts: statistics, the audit-log reading, the SVG charts and the report.
import { countByKind, isIdleAllowed, parseAuditLines, parseMicroTime, type ApiRequest } from "./audit";
import { barChart, escapeXml, lineChart, linearTicks, logTicks, stackedBars, stripChart } from "./charts";
import { parseOptions, PHASES, USAGE } from "./options";
import { leastSquares, perMinuteMeans, plateau, plateauWindows } from "./plateau";
import { charts, renderReport, targets } from "./report";
import type { BenchResult, EventLoop, LatencyRun, LatencyType, RssSample, RunConfig, SoakResult, ThroughputResult } from "./result";
import { coveredLength, median, parseKeySpecName, percentile, ratioText, summarize } from "./stats";

describe("statistics", () => {
  it("nearest-rank percentiles", () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 90)).toBe(90);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile(v, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
    // Fewer than 10 values: p90 is the maximum.
    expect(percentile([1, 2, 3, 4, 5], 90)).toBe(5);
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it("median of an odd and an even count; the input is not reordered", () => {
    const v = [3, 1, 2];
    expect(median(v)).toBe(2);
    expect(v).toEqual([3, 1, 2]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("summarize", () => {
    expect(summarize([10, 20, 30, 40])).toEqual({ n: 4, min: 10, median: 25, p90: 40, p99: 40, max: 40, mean: 25 });
    expect(summarize([]).n).toBe(0);
  });

  it("coveredLength counts overlaps once and clips", () => {
    expect(coveredLength([])).toBe(0);
    expect(coveredLength([[0, 10], [5, 15], [20, 25]])).toBe(20);
    expect(coveredLength([[20, 25], [0, 10], [2, 3]])).toBe(15);
    expect(coveredLength([[0, 10], [5, 15]], 8, 12)).toBe(4);
    expect(coveredLength([[0, 1]], 5, 6)).toBe(0);
    expect(coveredLength([[0, 5], [5, 10]])).toBe(10);
  });

  it("key type names", () => {
    expect(parseKeySpecName("ECDSA-P256")).toEqual({ algorithm: "ECDSA", curve: "P-256" });
    expect(parseKeySpecName("ecdsa-p384")).toEqual({ algorithm: "ECDSA", curve: "P-384" });
    expect(parseKeySpecName("RSA-4096")).toEqual({ algorithm: "RSA", bits: 4096 });
    expect(() => parseKeySpecName("RSA-1024")).toThrow(/unknown key type/);
  });

  it("ratios", () => {
    expect(ratioText(130, 100)).toBe("1.30x");
    expect(ratioText(1, 0)).toBe("n/a");
    expect(ratioText(NaN, 1)).toBe("n/a");
  });
});

describe("audit log", () => {
  const event = (o: Record<string, unknown>) => JSON.stringify({
    kind: "Event", level: "Metadata", auditID: "a1", stage: "ResponseComplete", requestURI: "/api/v1/namespaces/bench/secrets/x", verb: "get",
    user: { username: "system:serviceaccount:bench:cert-agent" }, objectRef: { resource: "secrets", namespace: "bench", name: "x", apiVersion: "v1" },
    responseStatus: { code: 200 }, requestReceivedTimestamp: "2026-01-01T00:00:00.000100Z", stageTimestamp: "2026-01-01T00:00:00.002350Z", ...o,
  });

  it("keeps microseconds", () => {
    expect(parseMicroTime("2026-01-01T00:00:00.002350Z") - parseMicroTime("2026-01-01T00:00:00.000100Z")).toBeCloseTo(2.25, 6);
    expect(parseMicroTime("2026-01-01T00:00:01Z") - Date.parse("2026-01-01T00:00:00Z")).toBe(1000);
  });

  it("one request per auditID; a watch once, when established", () => {
    const lines = [
      event({}),
      event({ auditID: "w1", verb: "watch", stage: "ResponseStarted", requestURI: "/api/v1/namespaces/bench/secrets?watch=true", objectRef: { resource: "secrets", namespace: "bench" } }),
      event({ auditID: "w1", verb: "watch", stage: "ResponseComplete", objectRef: { resource: "secrets", namespace: "bench" } }),
      event({ auditID: "s1", verb: "update", objectRef: { resource: "issuedcertificates", subresource: "status", namespace: "bench", name: "c" } }),
      event({ auditID: "p1", stage: "ResponseStarted" }), // not a watch: only ResponseComplete counts
      "not json",
      "",
    ];
    const seen = new Set<string>();
    const got = parseAuditLines(lines, seen);
    expect(got.map((r) => `${r.verb} ${r.resource}`)).toEqual(["get secrets", "watch secrets", "update issuedcertificates/status"]);
    expect(got[0]!.completedMs - got[0]!.receivedMs).toBeCloseTo(2.25, 6);
    expect(got[0]!.user).toBe("system:serviceaccount:bench:cert-agent");
    // The watch's end in a later read is not a new request either.
    expect(parseAuditLines([event({ auditID: "w1", verb: "watch", stage: "ResponseComplete" })], seen)).toEqual([]);
  });

  it("counts by kind; idle allows watches and Lease renewals only", () => {
    const r = (verb: string, resource: string) => ({ verb, resource } as ApiRequest);
    expect(countByKind([r("get", "secrets"), r("get", "leases"), r("get", "secrets")])).toEqual([{ kind: "get secrets", count: 2 }, { kind: "get leases", count: 1 }]);
    expect([r("watch", "secrets"), r("get", "leases"), r("update", "leases"), r("get", "issuedcertificates"), r("list", "leases")].map(isIdleAllowed))
      .toEqual([true, true, true, false, false]);
  });
});

/** A small XML well-formedness check: balanced tags, quoted attributes, no raw < or & in text. */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    expect(text).not.toMatch(/&(?!(amp|lt|gt|quot|apos);)/);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 60)}`);
    if (m[1]) expect(stack.pop()).toBe(m[2]);
    else if (!m[4]) stack.push(m[2]!);
    i = tag.lastIndex;
  }
  expect(stack).toEqual([]);
}

describe("charts", () => {
  it("tick helpers", () => {
    expect(linearTicks(9)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(linearTicks(0.3)).toEqual([0, 0.1, 0.2, 0.3]);
    expect(linearTicks(0)).toEqual([0, 1]);
    expect(logTicks(30, 900)).toEqual([20, 50, 100, 200, 500, 1000]);
    expect(escapeXml(`<a & "b">`)).toBe("&lt;a &amp; &quot;b&quot;&gt;");
  });

  it("a strip chart: one dot per value, valid SVG, labels escaped", () => {
    const svg = stripChart([{ label: "P-256 <fast>", values: [100, 120, 110] }, { label: "RSA-4096", values: [900, 2500] }], { title: "t & u", unit: "ms" });
    assertWellFormed(svg);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/<circle class="point"/g)).toHaveLength(5);
    expect(svg).toContain("P-256 &lt;fast&gt;");
    expect(svg).toContain("t &amp; u");
    for (const v of ["100", "120", "110", "900", "2500"]) expect(svg).toContain(`: ${v} ms`);
  });

  it("bars, stacked bars and a line chart", () => {
    const bars = barChart([{ label: "1000 P-256", bars: [{ name: "agent", value: 40 }, { name: "floor (a)", value: 31 }] }], { title: "b", unit: "s" });
    assertWellFormed(bars);
    expect(bars.match(/<rect class="bar"/g)).toHaveLength(2);
    const stacked = stackedBars([{ label: "P-256", parts: [{ name: "keygen", value: 1 }, { name: "agent", value: 9 }] }], { title: "s", unit: "ms" });
    assertWellFormed(stacked);
    expect(stacked.match(/<rect class="bar"/g)).toHaveLength(2);
    const line = lineChart([{ name: "rss", points: [[0, 60], [1, 80], [2, 75]] }], { title: "l", xLabel: "s", yLabel: "MiB", markers: [{ x: 1.5, label: "done" }] });
    assertWellFormed(line);
    expect(line).toMatch(/<path class="series" d="M[\d.]+,[\d.]+ L[\d.]+,[\d.]+ L[\d.]+,[\d.]+"/);
    expect(line).toContain("done");
  });
});

describe("report", () => {
  const loop: EventLoop = { maxMs: 12, p99Ms: 3, p50Ms: 0.1, samples: 1000, seconds: 10 };
  const s = (v: number) => summarize([v]);
  const run: LatencyRun = { totalMs: 100, serverMs: 95, keygenMs: 1, issuerMs: 40, apiMs: 44, agentMs: 10, requests: 8, cpuS: 0.02 };
  const type = (key: string, cpu: number): LatencyType => ({ key, runs: [run], total: s(100), agent: s(10), keygen: s(1), issuer: s(40), api: s(44), requests: s(8),
    cpuPerCertS: cpu, requestKinds: [{ kind: "update issuedcertificates/status", count: 4 }] });
  const tp = (key: string, count: number, agentMs: number, floorA: number, floorB: number): ThroughputResult => ({
    key, count, concurrency: 4, agent: { ms: agentMs, certsPerS: count / (agentMs / 1000), cpuS: 1, cpuPerCertS: 0.01, requestsPerCert: 8, requestKinds: [], peakRssMiB: 90, eventLoop: loop },
    floorA: { ms: floorA, cpuS: 1, requestsPerCert: 8 }, floorB: { ms: floorB, threads: 4 }, rss: [{ tS: 0, rssMiB: 60 }, { tS: 1, rssMiB: 90 }], finishedAtS: 1,
  });
  const result: BenchResult = {
    version: 1, startedAt: "2026-01-01T00:00:00.000Z", durationS: 600,
    machine: { cpuModel: "Test CPU", cores: 8, memoryGiB: 16, node: "v24.0.0", kernel: "6.0", os: "Linux", loadStart: 0.1, loadEnd: 0.2 },
    config: { mode: "full", concurrency: 4, latencyRuns: 1, p256Count: 1000, rsaCount: 50, idleSeconds: 300, fleetClusters: 3, fleetCertsPerCluster: 100, soakMinutes: 30, soakObjects: 100,
      agentNodeOptions: ["--max-semi-space-size=2"] },
    latency: { types: [type("ECDSA-P256", 0.02), type("RSA-2048", 0.08)], trace: [{ atMs: 1, durationMs: 2, who: "agent", verb: "get", resource: "issuedcertificates", name: "c", code: 200 }],
      traceLog: [{ atMs: 5, message: "transition", to: "PENDING" }], watchDelivery: s(1), eventLoop: loop },
    throughput: [tp("ECDSA-P256", 1000, 39_000, 31_000, 500), tp("RSA-4096", 50, 70_000, 45_000, 60_000)],
    memory: { idleEmpty: { rssMiB: 65, heapUsedMiB: 20, heapTotalMiB: 30, externalMiB: 5 }, afterFinished: { rssMiB: 110, heapUsedMiB: 40, heapTotalMiB: 50, externalMiB: 6, objects: 1000 },
      restarted: { rssMiB: 125, heapUsedMiB: 40, heapTotalMiB: 50, externalMiB: 6, objects: 1000 } },
    startup: [{ objects: 0, readyMs: 800, firstReconcileMs: 810, allReconciledMs: 810 }],
    idle: { seconds: 300, objects: 1000, requests: [{ kind: "get leases", count: 150, allowed: true }, { kind: "get issuedcertificates", count: 1000, allowed: false }], beyond: 1000 },
    agentWarnings: [], errors: [],
  };

  it("targets: each met or not from the figures", () => {
    const t = Object.fromEntries(targets(result).map((x) => [x.what.split(",")[0]!.split(" (")[0]!, x.met]));
    expect(t).toMatchObject({
      "event-loop delay": true,
      "P-256 created -> FINISHED": true,
      "P-256 agent share": true,
      "1000 P-256 at once": true, // 39 / 31 = 1.26
      "50 RSA-4096 at once": true, // 70 / 60 = 1.17
      "RSS idle": true,
      "RSS with 1000 objects": false, // restarted: 125
      "agent CPU per RSA-2048 certificate": false, // 0.08
      "agent API requests per certificate": true,
      "agent requests while idle 300 s beyond watches and Lease renewals": false,
    });
  });

  it("says which phases failed", () => {
    expect(renderReport({ ...result, errors: ["fleet: boom"] }, { command: "c", json: "j" })).toContain("**Incomplete run**: these phases failed, their figures are missing:\n\n- fleet: boom");
  });

  it("prints the notes said of a run after it (a row measured again), and none when there are none", () => {
    expect(renderReport({ ...result, notes: ["the RSA-4096 row was measured again"] }, { command: "c", json: "j" })).toContain("Note: the RSA-4096 row was measured again\n");
    expect(renderReport(result, { command: "c", json: "j" })).not.toContain("Note:");
  });

  it("renders the tables, the machine and links to every chart it writes", () => {
    const md = renderReport(result, { command: "npm run bench -- --write-docs", json: "perf/last-run.json" });
    expect(md).toContain("Test CPU, 8 cores");
    expect(md).toContain("| ECDSA-P256 | 100 |");
    expect(md).toContain("| get issuedcertificates | 1000 | **no** |");
    expect(md).toContain("[perf/last-run.json](perf/last-run.json)");
    const files = Object.keys(charts(result));
    expect(files.sort()).toEqual(["latency-split.svg", "latency.svg", "rss.svg", "throughput.svg"]);
    for (const f of files) expect(md).toContain(`(perf/${f})`);
    for (const svg of Object.values(charts(result))) assertWellFormed(svg);
  });

  const soak = (minutes: number, mibPerMinute: number): SoakResult => {
    const rss = rssCurve(minutes, mibPerMinute);
    return {
      minutes, objects: 100, key: "ECDSA-P256", targetRatePerS: 2, maxInFlight: 4, ttlDays: [365, 364], durationS: minutes * 60,
      changes: 3601, issuances: 3600, issuancesPerS: 2, latency: summarize([150, 180, 900]), slow: 0, cpuS: 90, cpuPerIssuanceS: 0.025, eventLoop: loop,
      rss, heap: [{ tS: 0, usedMiB: 21, totalMiB: 30 }, { tS: minutes * 60, usedMiB: 22, totalMiB: 31 }], plateau: plateau(rss, minutes),
    };
  };

  it("soak: the plateau target is met below 2 MiB per 10 minutes, missed above, not judged under 30 minutes", () => {
    const met = (s: SoakResult) => targets({ ...result, soak: s }).find((t) => t.what.startsWith("RSS stops growing"));
    expect(met(soak(30, 0))).toMatchObject({ met: true, target: "second-half slope < 2 MiB per 10 min" });
    expect(met(soak(30, 0.5))).toMatchObject({ met: false });
    expect(met(soak(3, 0))).toMatchObject({ met: undefined });
    expect(met(soak(3, 0))!.result).toContain("too short to judge");
    expect(met(soak(30, 0))!.result).toContain("minutes 25-30 minus 10-15");
    expect(targets(result).some((t) => t.what.startsWith("RSS stops growing"))).toBe(false);
  });

  it("soak: a section with the workload said plainly, the figures, the criterion and its chart", () => {
    const r = { ...result, soak: soak(30, 0) };
    const md = renderReport(r, { command: "c", json: "j" });
    const section = md.slice(md.indexOf("## Soak"), md.indexOf("## How it is measured"));
    expect(section).toContain("continuous re-issuance through spec changes");
    expect(section).toContain("| 30 | 100 | 3600 | 2.00 | 180 | 900 | 900 | 0 | 90.0 | 0.025 |");
    expect(section).toMatch(/\| 80\.0 \| 80\.0 \| 8\d\.\d \| 8\d\.\d \| 21\.0 \| 22\.0 \| 31\.0 \| -?0\.\d \| -?0\.\d\d \|/);
    expect(section).toContain("RSS mean per minute (MiB): ");
    expect(section).toContain("below 2 MiB per 10 minutes");
    expect(section).toContain("(perf/soak-rss.svg)");
    expect(md).toContain("| soak, 100 re-issued for 30 min |");
    const svg = charts(r)["soak-rss.svg"]!;
    assertWellFormed(svg);
    expect(svg.match(/<path class="series"/g)).toHaveLength(3); // RSS, heap used, the fit
  });

  it("redraws a result from before the soak phase: no soak figures, nothing breaks", () => {
    const oldConfig: Partial<RunConfig> = { ...result.config };
    delete oldConfig.soakMinutes;
    delete oldConfig.soakObjects;
    const old = { ...result, config: oldConfig as RunConfig };
    const md = renderReport(old, { command: "c", json: "j" });
    expect(md).not.toContain("## Soak");
    expect(md).not.toContain("soak-rss.svg");
    expect(md).toContain("fleet 3 clusters x 100.\n");
    expect(Object.keys(charts(old))).not.toContain("soak-rss.svg");
  });
});

describe("options", () => {
  const parse = (...argv: string[]) => {
    const o = parseOptions(argv, ["--max-semi-space-size=2"]);
    if (o === "help") throw new Error("help");
    return o;
  };

  it("the full run soaks 30 minutes with 100 objects, the quick run half a minute with 5; soak runs last", () => {
    expect(parse().config).toMatchObject({ mode: "full", soakMinutes: 30, soakObjects: 100, agentNodeOptions: ["--max-semi-space-size=2"] });
    expect(parse("--quick").config).toMatchObject({ mode: "quick", soakMinutes: 0.5, soakObjects: 5 });
    expect([...parse().only]).toEqual([...PHASES]);
    expect(PHASES[PHASES.length - 1]).toBe("soak");
  });

  it("soak options make a custom run; --only soak runs the soak alone", () => {
    const o = parse("--only", "soak", "--soak-minutes", "30");
    expect([...o.only]).toEqual(["soak"]);
    expect(o.config).toMatchObject({ mode: "custom", soakMinutes: 30, soakObjects: 100 });
    expect(parse("--quick", "--soak-objects", "7", "--soak-minutes", "1.5").config).toMatchObject({ mode: "custom", soakMinutes: 1.5, soakObjects: 7 });
  });

  it("refuses a soak of no length, a fractional object count and unknown phases", () => {
    expect(() => parse("--soak-minutes", "0")).toThrow(/--soak-minutes must be a number of minutes > 0/);
    expect(() => parse("--soak-minutes", "ten")).toThrow(/--soak-minutes/);
    expect(() => parse("--soak-minutes", "")).toThrow(/--soak-minutes/);
    expect(() => parse("--soak-objects", "2.5")).toThrow(/--soak-objects must be an integer >= 1/);
    expect(() => parse("--only", "soak,nap")).toThrow(/unknown phase "nap"/);
    expect(parseOptions(["--help"], [])).toBe("help");
    expect(USAGE).toMatch(/--soak-minutes N/);
    expect(USAGE).toMatch(/--soak-objects N/);
  });
});

/** RSS every second for `minutes`: a base line, a linear trend and a GC-like saw-tooth (37 s period, 3 MiB). */
function rssCurve(minutes: number, mibPerMinute: number): RssSample[] {
  return Array.from({ length: minutes * 60 + 1 }, (_, t) => ({ tS: t, rssMiB: 80 + (mibPerMinute * t) / 60 + 3 * ((t % 37) / 37) }));
}

describe("plateau", () => {
  it("windows: minutes 10-15 against the last 5 from 20 minutes on, thirds below", () => {
    expect(plateauWindows(30)).toEqual({ baseline: [10, 15], final: [25, 30] });
    expect(plateauWindows(60)).toEqual({ baseline: [10, 15], final: [55, 60] });
    expect(plateauWindows(3)).toEqual({ baseline: [1, 2], final: [2, 3] });
  });

  it("least squares recovers a line and says so when there is none", () => {
    const fit = leastSquares([[0, 1], [1, 3], [2, 5], [3, 7]]);
    expect(fit.slope).toBeCloseTo(2, 12);
    expect(fit.intercept).toBeCloseTo(1, 12);
    expect(leastSquares([[1, 1]]).slope).toBeNaN();
    expect(leastSquares([[1, 1], [1, 2]]).slope).toBeNaN();
  });

  it("per-minute means, the last minute partial", () => {
    const samples = Array.from({ length: 151 }, (_, t) => ({ tS: t, rssMiB: t < 60 ? 10 : t < 120 ? 20 : 30 }));
    expect(perMinuteMeans(samples, 150)).toEqual([10, 20, 30]);
  });

  it("a flat saw-tooth has no slope; a steady leak shows in both the growth and the slope", () => {
    const flat = plateau(rssCurve(30, 0), 30);
    expect(Math.abs(flat.slopeMiBPer10Min)).toBeLessThan(0.1);
    expect(Math.abs(flat.growthMiB)).toBeLessThan(0.2);
    expect(flat.perMinuteMiB).toHaveLength(30);
    expect(flat).toMatchObject({ startMiB: 80, minMiB: 80, baseline: { fromMin: 10, toMin: 15 }, final: { fromMin: 25, toMin: 30 }, fitFromMin: 15 });
    expect(flat.maxMiB).toBeLessThan(83);

    const leak = plateau(rssCurve(30, 0.5), 30); // 5 MiB per 10 minutes
    expect(leak.slopeMiBPer10Min).toBeCloseTo(5, 0);
    expect(leak.growthMiB).toBeCloseTo(0.5 * 15, 0); // window midpoints 27.5 and 12.5 minutes apart by 15
    expect(leak.endMiB).toBeCloseTo(80 + 15 + 3 * ((1800 % 37) / 37), 6);
  });

  it("ignores samples after the soak's end", () => {
    const samples = [...rssCurve(3, 0), { tS: 181.5, rssMiB: 999 }];
    expect(plateau(samples, 3).maxMiB).toBeLessThan(83);
  });
});
