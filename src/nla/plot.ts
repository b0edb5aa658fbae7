// Training curves as a small self-contained SVG (no dependency): people would rather look
// at a curve than read a column of numbers.
import * as fs from 'node:fs';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

export function curvesSvg(title: string, x: number[], series: Record<string, number[]>, w = 640, h = 320): string {
  const pad = { l: 50, r: 150, t: 30, b: 35 };
  const vals = Object.values(series).flat().filter(Number.isFinite);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (!(hi > lo)) (lo -= 1), (hi += 1);
  const x0 = Math.min(...x), x1 = Math.max(x0 + 1, ...x);
  const px = (v: number) => pad.l + ((v - x0) / (x1 - x0)) * (w - pad.l - pad.r);
  const py = (v: number) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11">`;
  s += `<rect width="${w}" height="${h}" fill="white"/><text x="${pad.l}" y="18" font-size="13">${esc(title)}</text>`;
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4, y = py(v);
    s += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${pad.l - 4}" y="${y + 4}" text-anchor="end">${v.toFixed(2)}</text>`;
  }
  s += `<text x="${(pad.l + w - pad.r) / 2}" y="${h - 8}" text-anchor="middle">step</text>`;
  Object.entries(series).forEach(([name, ys], k) => {
    const c = COLORS[k % COLORS.length];
    const pts = ys.map((v, i) => (Number.isFinite(v) ? `${px(x[i]).toFixed(1)},${py(v).toFixed(1)}` : '')).filter(Boolean).join(' ');
    s += `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts}"/>`;
    s += `<rect x="${w - pad.r + 10}" y="${pad.t + k * 18}" width="12" height="3" fill="${c}"/><text x="${w - pad.r + 28}" y="${pad.t + k * 18 + 5}">${esc(name)}</text>`;
  });
  return s + '</svg>\n';
}

export function writeCurvesSvg(file: string, title: string, x: number[], series: Record<string, number[]>): void {
  fs.writeFileSync(file, curvesSvg(title, x, series));
}

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
