// Writes docs/decode-vs-context.svg: decode tokens/s against context length (log scale) for the hybrid
// layout (MobileLLM-Pro: 3 of 4 layers sliding, window 512) and the same model with every layer global,
// from the JSON written by `npm run bench -- --json FILE`. Plain SVG, no plotting library.
//
//   npx tsx bench/plot-context.ts /tmp/bench.json [docs/decode-vs-context.svg]
import { readFileSync, writeFileSync } from "node:fs";
import type { Measured } from "./results.js";

const [input, output = "docs/decode-vs-context.svg"] = process.argv.slice(2);
if (!input) throw new Error("usage: tsx bench/plot-context.ts RESULTS.json [OUT.svg]");
const data = JSON.parse(readFileSync(input, "utf8")) as { machine: string; date: string; measured: Measured[] };

// The build both layouts were measured with (the all-global run uses --simd auto).
const build = data.measured.find((m) => m.layout === "all-global")?.build ?? "relaxed";
// Both layouts measured side by side in one process ("layouts: decode at P"); else the separate runs.
const paired = data.measured.some((m) => m.task.startsWith("layouts: "));
const pattern = paired ? /^layouts: decode at \d+$/ : /^decode at \d+$/;
const decode = data.measured.filter((m) => m.build === build && m.position !== undefined && pattern.test(m.task));
const series = [...new Set(decode.map((m) => `${m.layout}|${m.threads}`))]
  .map((key) => {
    const [layout, threads] = key.split("|");
    const points = decode.filter((m) => m.layout === layout && m.threads === Number(threads)).sort((a, b) => (a.position as number) - (b.position as number));
    return { layout, threads: Number(threads), points };
  })
  .sort((a, b) => a.layout.localeCompare(b.layout) || b.threads - a.threads);
if (series.length === 0) throw new Error(`${input}: no decode measurements`);

const W = 720;
const H = 440;
const M = { left: 70, right: 190, top: 50, bottom: 60 };
const xs = [...new Set(decode.map((m) => m.position as number))].sort((a, b) => a - b);
const yMax = Math.ceil(Math.max(...decode.map((m) => m.tokPerS)) / 10) * 10;
const lx = (p: number) => Math.log2(p);
const x = (p: number) => M.left + ((lx(p) - lx(xs[0])) / Math.max(1e-9, lx(xs[xs.length - 1]) - lx(xs[0]))) * (W - M.left - M.right);
const y = (v: number) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);
const colour = (layout: string) => (layout === "hybrid" ? "#1f77b4" : "#d62728");
const dash = (threads: number) => (threads > 1 ? "" : ' stroke-dasharray="6 4"');
const label = (p: number) => (p >= 1024 ? `${p / 1024}k` : String(p));
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

const out: string[] = [];
out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
out.push(`<text x="${M.left}" y="22" font-size="15" font-weight="bold">Decode speed against context length: hybrid vs all-global attention</text>`);
out.push(`<text x="${M.left}" y="39" fill="#555">full-size MobileLLM-Pro (synthetic weights), ${build} build, ${esc(data.date.slice(0, 10))}</text>`);
for (let v = 0; v <= yMax; v += yMax <= 50 ? 5 : 10) {
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
  out.push(`<text x="${M.left - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
}
for (const p of xs) {
  out.push(`<line x1="${x(p)}" x2="${x(p)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#f0f0f0"/>`);
  out.push(`<text x="${x(p)}" y="${H - M.bottom + 18}" text-anchor="middle">${label(p)}</text>`);
}
out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`);
out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`);
out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 18}" text-anchor="middle">positions in the KV cache (log scale)</text>`);
out.push(`<text transform="translate(20 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">decode tokens/s</text>`);
series.forEach((s, i) => {
  const pts = s.points.map((m) => `${x(m.position as number).toFixed(1)},${y(m.tokPerS).toFixed(1)}`).join(" ");
  out.push(`<polyline points="${pts}" fill="none" stroke="${colour(s.layout)}" stroke-width="2.5"${dash(s.threads)}/>`);
  for (const m of s.points) {
    out.push(`<circle cx="${x(m.position as number).toFixed(1)}" cy="${y(m.tokPerS).toFixed(1)}" r="3.5" fill="${colour(s.layout)}"><title>${s.layout}, ${s.threads} thread(s), ${m.position}: ${m.tokPerS.toFixed(1)} tok/s</title></circle>`);
  }
  const ly = M.top + 10 + i * 22;
  out.push(`<line x1="${W - M.right + 15}" x2="${W - M.right + 45}" y1="${ly}" y2="${ly}" stroke="${colour(s.layout)}" stroke-width="2.5"${dash(s.threads)}/>`);
  out.push(`<text x="${W - M.right + 52}" y="${ly + 4}">${s.layout}, ${s.threads} thread${s.threads > 1 ? "s" : ""}</text>`);
});
out.push(`<text x="${W - M.right + 15}" y="${M.top + 10 + series.length * 22 + 10}" fill="#555" font-size="11">hybrid: 9 global +</text>`);
out.push(`<text x="${W - M.right + 15}" y="${M.top + 10 + series.length * 22 + 24}" fill="#555" font-size="11">21 sliding layers (512)</text>`);
out.push(`</svg>`);
writeFileSync(output, out.join("\n") + "\n");
console.log(`wrote ${output}: ${series.map((s) => `${s.layout} t${s.threads} [${s.points.map((m) => m.tokPerS.toFixed(1)).join(", ")}]`).join("; ")}`);
