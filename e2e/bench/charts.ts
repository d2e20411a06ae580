// Plain SVG charts drawn from the benchmark's JSON (no browser, no library): a strip chart (every run as
// a dot, per row, with its median and p90), grouped horizontal bars, stacked horizontal bars and a line
// chart. Fixed layout, system fonts; what a Markdown viewer shows as an image.

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12"`;
export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A number as a tick label: 1234 -> "1234", 0.25 -> "0.25", no float noise. */
export function tickLabel(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** "Nice" linear ticks (1, 2, 5 x 10^k) covering [0, max]. */
export function linearTicks(max: number, target = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Log ticks (1, 2, 5 per decade) covering [min, max]. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-9)));
  const hi = Math.ceil(Math.log10(Math.max(max, min * 10)));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) for (const m of [1, 2, 5]) ticks.push(Number((m * 10 ** e).toPrecision(12)));
  const first = ticks.filter((t) => t <= min).pop() ?? ticks[0]!;
  const last = ticks.find((t) => t >= max) ?? ticks[ticks.length - 1]!;
  return ticks.filter((t) => t >= first && t <= last);
}

interface Frame {
  width: number;
  height: number;
  title: string;
  body: string[];
}

function svg(f: Frame): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" ${FONT}>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${f.width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(f.title)}</text>`,
    ...f.body,
    "</svg>",
    "",
  ].join("\n");
}

const n = (v: number) => (Number.isFinite(v) ? Number(v.toFixed(2)) : 0);

/** A horizontal value axis from x0 to x1 at y with gridlines up to yTop. */
function xAxis(ticks: number[], scale: (v: number) => number, y: number, yTop: number, label: string): string[] {
  const out = [`<line x1="${n(scale(ticks[0]!))}" y1="${y}" x2="${n(scale(ticks[ticks.length - 1]!))}" y2="${y}" stroke="#333"/>`];
  for (const t of ticks) {
    const x = n(scale(t));
    out.push(`<line x1="${x}" y1="${yTop}" x2="${x}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x}" y="${y + 15}" text-anchor="middle">${escapeXml(tickLabel(t))}</text>`);
  }
  const mid = (scale(ticks[0]!) + scale(ticks[ticks.length - 1]!)) / 2;
  out.push(`<text x="${n(mid)}" y="${y + 32}" text-anchor="middle">${escapeXml(label)}</text>`);
  return out;
}

export interface StripRow {
  label: string;
  values: number[];
}

/** Every value of each row as a dot on a log axis, with the row's median (bar) and p90 (tick). */
export function stripChart(rows: StripRow[], o: { title: string; unit: string; width?: number }): string {
  const width = o.width ?? 720;
  const left = 110;
  const right = width - 30;
  const rowH = 44;
  const top = 40;
  const height = top + rows.length * rowH + 50;
  const all = rows.flatMap((r) => r.values).filter((v) => v > 0);
  const ticks = logTicks(all.length ? Math.min(...all) : 1, all.length ? Math.max(...all) : 10);
  const lo = Math.log10(ticks[0]!);
  const hi = Math.log10(ticks[ticks.length - 1]!);
  const scale = (v: number) => left + ((Math.log10(Math.max(v, ticks[0]!)) - lo) / (hi - lo || 1)) * (right - left);
  const yAxis = top + rows.length * rowH;
  const body = xAxis(ticks, scale, yAxis, top, `${o.unit} (log scale); dots: runs, bar: median, tick: p90`);
  rows.forEach((r, i) => {
    const cy = top + i * rowH + rowH / 2;
    const color = PALETTE[i % PALETTE.length]!;
    body.push(`<text x="${left - 10}" y="${cy + 4}" text-anchor="end">${escapeXml(r.label)}</text>`);
    const sorted = [...r.values].sort((a, b) => a - b);
    sorted.forEach((v, j) => {
      // A small vertical jitter by rank, so equal values stay visible.
      const dy = ((j % 5) - 2) * 3;
      body.push(`<circle class="point" cx="${n(scale(v))}" cy="${n(cy + dy)}" r="3" fill="${color}" fill-opacity="0.6"><title>${escapeXml(`${r.label}: ${tickLabel(Number(v.toFixed(1)))} ${o.unit}`)}</title></circle>`);
    });
    if (sorted.length) {
      const med = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
      const p90 = sorted[Math.max(0, Math.ceil(0.9 * sorted.length) - 1)]!;
      body.push(`<line x1="${n(scale(med))}" y1="${cy - 14}" x2="${n(scale(med))}" y2="${cy + 14}" stroke="#000" stroke-width="2.5"/>`);
      body.push(`<line x1="${n(scale(p90))}" y1="${cy - 8}" x2="${n(scale(p90))}" y2="${cy + 8}" stroke="#000" stroke-width="1"/>`);
    }
  });
  return svg({ width, height, title: o.title, body });
}

export interface BarGroup {
  label: string;
  bars: { name: string; value: number; note?: string }[];
}

/** Groups of horizontal bars on one linear axis (e.g. a run next to its floors). */
export function barChart(groups: BarGroup[], o: { title: string; unit: string; width?: number }): string {
  const width = o.width ?? 720;
  const left = 170;
  const right = width - 90;
  const barH = 16;
  const top = 40;
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const heights = groups.map((g) => g.bars.length * (barH + 4) + 18);
  const yAxis = top + heights.reduce((a, b) => a + b, 0);
  const height = yAxis + 50 + names.length * 16;
  const ticks = linearTicks(Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value)), 0));
  const scale = (v: number) => left + (v / ticks[ticks.length - 1]!) * (right - left);
  const body = xAxis(ticks, scale, yAxis, top, o.unit);
  let y = top + 8;
  for (const g of groups) {
    body.push(`<text x="${left - 10}" y="${y + 10}" text-anchor="end" font-weight="bold">${escapeXml(g.label)}</text>`);
    for (const b of g.bars) {
      const color = PALETTE[names.indexOf(b.name) % PALETTE.length]!;
      const w = Math.max(0, scale(b.value) - left);
      body.push(`<rect class="bar" x="${left}" y="${y}" width="${n(w)}" height="${barH}" fill="${color}"><title>${escapeXml(`${g.label}, ${b.name}: ${tickLabel(Number(b.value.toFixed(2)))} ${o.unit}`)}</title></rect>`);
      body.push(`<text x="${n(left + w + 5)}" y="${y + 12}">${escapeXml(b.note ?? tickLabel(Number(b.value.toFixed(2))))}</text>`);
      y += barH + 4;
    }
    y += 18;
  }
  names.forEach((name, i) => {
    const ly = yAxis + 45 + i * 16;
    body.push(`<rect x="${left}" y="${ly - 10}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    body.push(`<text x="${left + 18}" y="${ly}">${escapeXml(name)}</text>`);
  });
  return svg({ width, height, title: o.title, body });
}

export interface StackedRow {
  label: string;
  parts: { name: string; value: number }[];
}

/** One horizontal bar per row, split into parts (same names in every row, same colours). */
export function stackedBars(rows: StackedRow[], o: { title: string; unit: string; width?: number; log?: boolean }): string {
  const width = o.width ?? 720;
  const left = 110;
  const right = width - 30;
  const barH = 22;
  const top = 40;
  const names = [...new Set(rows.flatMap((r) => r.parts.map((p) => p.name)))];
  const yAxis = top + rows.length * (barH + 12);
  const height = yAxis + 62;
  const ticks = linearTicks(Math.max(...rows.map((r) => r.parts.reduce((a, p) => a + Math.max(0, p.value), 0)), 0));
  const scale = (v: number) => left + (v / ticks[ticks.length - 1]!) * (right - left);
  const body = xAxis(ticks, scale, yAxis, top, o.unit);
  rows.forEach((r, i) => {
    const y = top + 6 + i * (barH + 12);
    body.push(`<text x="${left - 10}" y="${y + 15}" text-anchor="end">${escapeXml(r.label)}</text>`);
    let x = left;
    for (const p of r.parts) {
      const w = Math.max(0, scale(p.value) - left);
      const color = PALETTE[names.indexOf(p.name) % PALETTE.length]!;
      body.push(`<rect class="bar" x="${n(x)}" y="${y}" width="${n(w)}" height="${barH}" fill="${color}"><title>${escapeXml(`${r.label}, ${p.name}: ${tickLabel(Number(p.value.toFixed(1)))} ${o.unit}`)}</title></rect>`);
      x += w;
    }
  });
  let lx = left;
  for (const [i, name] of names.entries()) {
    body.push(`<rect x="${lx}" y="${yAxis + 40}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    body.push(`<text x="${lx + 16}" y="${yAxis + 50}">${escapeXml(name)}</text>`);
    lx += 26 + name.length * 7;
  }
  return svg({ width, height, title: o.title, body });
}

export interface Series {
  name: string;
  points: [number, number][];
}

/** Lines over a shared linear x axis, y from 0; optional vertical markers (e.g. "all FINISHED") and horizontal levels (targets). */
export function lineChart(series: Series[], o: { title: string; xLabel: string; yLabel: string; markers?: { x: number; label: string }[];
  levels?: { y: number; label: string }[]; width?: number }): string {
  const width = o.width ?? 720;
  const height = 340;
  const left = 60;
  const right = width - 20;
  const top = 40;
  const bottom = height - 70;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xt = linearTicks(Math.max(...xs, ...(o.markers ?? []).map((m) => m.x), 1));
  const yt = linearTicks(Math.max(...ys, ...(o.levels ?? []).map((l) => l.y), 1) * 1.1);
  const sx = (v: number) => left + (v / xt[xt.length - 1]!) * (right - left);
  const sy = (v: number) => bottom - (v / yt[yt.length - 1]!) * (bottom - top);
  const body = xAxis(xt, sx, bottom, top, o.xLabel);
  for (const t of yt) {
    body.push(`<line x1="${left}" y1="${n(sy(t))}" x2="${right}" y2="${n(sy(t))}" stroke="#e5e5e5"/>`);
    body.push(`<text x="${left - 6}" y="${n(sy(t) + 4)}" text-anchor="end">${escapeXml(tickLabel(t))}</text>`);
  }
  body.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333"/>`);
  body.push(`<text x="14" y="${(top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(top + bottom) / 2})">${escapeXml(o.yLabel)}</text>`);
  for (const l of o.levels ?? []) {
    body.push(`<line x1="${left}" y1="${n(sy(l.y))}" x2="${right}" y2="${n(sy(l.y))}" stroke="#7f7f7f" stroke-dasharray="2 3"/>`);
    body.push(`<text x="${right - 4}" y="${n(sy(l.y) - 4)}" text-anchor="end" fill="#555">${escapeXml(l.label)}</text>`);
  }
  for (const m of o.markers ?? []) {
    body.push(`<line x1="${n(sx(m.x))}" y1="${top}" x2="${n(sx(m.x))}" y2="${bottom}" stroke="#d62728" stroke-dasharray="4 3"/>`);
    body.push(`<text x="${n(sx(m.x) - 4)}" y="${bottom - 6}" text-anchor="end" fill="#d62728">${escapeXml(m.label)}</text>`);
  }
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${n(sx(p[0]))},${n(sy(p[1]))}`).join(" ");
    body.push(`<path class="series" d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    body.push(`<rect x="${left + 10 + i * 160}" y="${height - 22}" width="12" height="12" fill="${color}"/>`);
    body.push(`<text x="${left + 28 + i * 160}" y="${height - 12}">${escapeXml(s.name)}</text>`);
  });
  return svg({ width, height, title: o.title, body });
}
