// A small SVG line chart for bench/report.mjs, no dependency: one polyline per series with its points
// marked, a legend, axis labels and ticks; either axis linear or log (base 10, or the given ticks).

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

const escape = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const label = (v) => (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(Number(v.toPrecision(3))));

/** Tick values and domain of a log axis over [min, max]: the given ticks, else 1-2-5 or powers of 10. */
function logAxis(min, max, given) {
  if (given) {
    const pad = (Math.log10(Math.max(...given)) - Math.log10(Math.min(...given))) * 0.08 || 0.1;
    return { ticks: given, lo: Math.log10(Math.min(...given, min)) - pad, hi: Math.log10(Math.max(...given, max)) + pad };
  }
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  const steps = hi - lo <= 2 ? [1, 2, 5] : [1];
  const ticks = [];
  for (let e = lo; e <= hi; e++) for (const s of steps) if (s * 10 ** e <= 10 ** hi) ticks.push(s * 10 ** e);
  return { ticks, lo, hi };
}

/** Tick values and domain of a linear axis from 0 to a round number above max. */
function linearAxis(max, given) {
  if (given) return { ticks: given, lo: Math.min(0, ...given), hi: Math.max(...given) };
  const raw = (max || 1) / 5;
  const unit = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((s) => s * unit).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v < max + step; v += step) ticks.push(Number(v.toPrecision(12)));
  return { ticks, lo: 0, hi: ticks.at(-1) };
}

/**
 * `series`: [{ name, points: [[x, y], ...], dashed?, color? }] (points with a missing, or on a log axis a
 * non-positive, value are skipped). Returns the SVG document as a string.
 */
export function lineChart({ title, xLabel, yLabel, series, xLog = true, yLog = true, xTicks, yTicks, width = 720, height = 440 }) {
  const shown = series.map((s, i) => ({
    ...s,
    color: s.color ?? COLORS[i % COLORS.length],
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!xLog || x > 0) && (!yLog || y > 0)),
  }));
  const xs = shown.flatMap((s) => s.points.map(([x]) => x));
  const ys = shown.flatMap((s) => s.points.map(([, y]) => y));
  if (!xs.length) throw new Error(`chart "${title}": no points`);
  const legendRows = Math.ceil(shown.length / 2);
  const m = { left: 72, right: 24, top: 44, bottom: 58 + 20 * legendRows };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;

  const xAxis = xLog ? logAxis(Math.min(...xs), Math.max(...xs), xTicks) : linearAxis(Math.max(...xs), xTicks);
  const yAxis = yLog ? logAxis(Math.min(...ys), Math.max(...ys), yTicks) : linearAxis(Math.max(...ys), yTicks);
  const scale = (axis, log, v) => ((log ? Math.log10(v) : v) - axis.lo) / (axis.hi - axis.lo);
  const px = (x) => m.left + scale(xAxis, xLog, x) * plotW;
  const py = (y) => m.top + plotH - scale(yAxis, yLog, y) * plotH;
  const r = (v) => v.toFixed(1);

  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escape(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
  for (const t of xAxis.ticks) {
    const x = r(px(t));
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + plotH}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${x}" y="${m.top + plotH + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of yAxis.ticks) {
    const y = r(py(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + plotW}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${label(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + plotW / 2}" y="${m.top + plotH + 36}" text-anchor="middle">${escape(xLabel)}${xLog ? " (log scale)" : ""}</text>`);
  out.push(`<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}${yLog ? " (log scale)" : ""}</text>`);
  for (const s of shown) {
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${s.points.map(([x, y]) => `${r(px(x))},${r(py(y))}`).join(" ")}"/>`);
    for (const [x, y] of s.points) out.push(`<circle cx="${r(px(x))}" cy="${r(py(y))}" r="3.5" fill="${s.color}"><title>${escape(`${s.name}: ${label(x)} → ${label(y)}`)}</title></circle>`);
  }
  shown.forEach((s, i) => {
    const x = m.left + (i % 2) * (plotW / 2);
    const y = m.top + plotH + 56 + 20 * Math.floor(i / 2);
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    out.push(`<line x1="${x}" y1="${y}" x2="${x + 28}" y2="${y}" stroke="${s.color}" stroke-width="2"${dash}/><circle cx="${x + 14}" cy="${y}" r="3.5" fill="${s.color}"/>`);
    out.push(`<text x="${x + 36}" y="${y}" dominant-baseline="middle">${escape(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
