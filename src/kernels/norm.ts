// RMSNorm and LayerNorm: one workgroup (or, on lavapipe, one thread; see RowMode) per row for the forward (saving per-row statistics)
// and for dx; dweight/dbias are a sum over rows, done as per-row-block partial sums (one
// thread per column, coalesced reads) followed by the column-sum kernel over the blocks.
//   rms:   y = x * r * w,              r = 1/sqrt(mean(x^2) + eps),   stats [rows]   = r
//   layer: y = (x - mu) * r * w + b,   r = 1/sqrt(var(x) + eps),      stats [rows,2] = (mu, r)
import type { DType } from '../tensor/dtype.js';
import { f16Header, rowPrelude, type RowMode } from './softmax.js';
import { storage, uniformBlock } from './uniforms.js';

export type NormKind = 'rms' | 'layer';

/** Forward. Uniforms: [0]=rows, [1]=D, [2]=x offset, [3]=w offset, [4]=eps (f32), [5]=b offset, [6]=y offset, [7]=stats offset. */
export function normForwardKernel(kind: NormKind, xt: DType, wt: DType, bias: boolean, mode: RowMode = 'wg') {
  const key = `norm_fwd|${kind}|${xt}|${wt}|${bias ? 'b' : 'nb'}|${mode}`;
  const source = () => {
    let b = 1;
    let s = f16Header(xt, wt) + uniformBlock(8) + storage(b++, 'x', xt, false) + storage(b++, 'w', wt, false);
    if (bias) s += storage(b++, 'bb', wt, false);
    s += storage(b++, 'y', 'f32', true) + storage(b++, 'stats', 'f32', true) + rowPrelude(mode);
    s += `  let n = u(1u); let xb = u(2u) + row * n; let wb = u(3u); let ob = u(6u) + row * n; let eps = uf(4u); let sb = u(7u);\n`;
    if (kind === 'rms') {
      s += `  var ss = 0.0;
  for (var i = l; i < n; i += RW) { let v = f32(x[xb + i]); ss += v * v; }
  let r = inverseSqrt(wg_sum(l, ss) / f32(n) + eps);
  for (var i = l; i < n; i += RW) { y[ob + i] = f32(x[xb + i]) * r * f32(w[wb + i]); }
  if (l == 0u) { stats[sb + row] = r; }
}
`;
    } else {
      // Two passes (mean, then centred squares): no cancellation for rows with a large mean.
      s += `  var acc = 0.0;
  for (var i = l; i < n; i += RW) { acc += f32(x[xb + i]); }
  let mu = wg_sum(l, acc) / f32(n);
  var sq = 0.0;
  for (var i = l; i < n; i += RW) { let d = f32(x[xb + i]) - mu; sq += d * d; }
  let r = inverseSqrt(wg_sum(l, sq) / f32(n) + eps);
  for (var i = l; i < n; i += RW) { y[ob + i] = (f32(x[xb + i]) - mu) * r * f32(w[wb + i])${bias ? ' + f32(bb[u(5u) + i])' : ''}; }
  if (l == 0u) { stats[sb + 2u * row] = mu; stats[sb + 2u * row + 1u] = r; }
}
`;
    }
    return s;
  };
  return { key, source };
}

/** xhat of element i in this row, from the saved statistics. */
const XHAT = (kind: NormKind) =>
  kind === 'rms' ? `let r = stats[u(5u) + row]; let mu = 0.0;` : `let mu = stats[u(5u) + 2u * row]; let r = stats[u(5u) + 2u * row + 1u];`;

/**
 * dx = r * (dxh - mean(dxh) - xh * mean(dxh * xh)) with dxh = g * w (rms drops the mean(dxh) term).
 * Uniforms: [0]=rows, [1]=D, [2]=x offset, [3]=w offset, [4]=g offset, [5]=stats offset, [6]=dx offset.
 */
export function normBackwardDxKernel(kind: NormKind, xt: DType, wt: DType, mode: RowMode = 'wg') {
  const key = `norm_bwd_dx|${kind}|${xt}|${wt}|${mode}`;
  const source = () =>
    f16Header(xt, wt) +
    uniformBlock(8) +
    storage(1, 'x', xt, false) +
    storage(2, 'w', wt, false) +
    storage(3, 'gy', 'f32', false) +
    storage(4, 'stats', 'f32', false) +
    storage(5, 'dx', 'f32', true) +
    rowPrelude(mode) +
    `  let n = u(1u); let xb = u(2u) + row * n; let wb = u(3u); let gb = u(4u) + row * n; let ob = u(6u) + row * n;
  ${XHAT(kind)}
  var s1 = 0.0; var s2 = 0.0;
  for (var i = l; i < n; i += RW) {
    let xh = (f32(x[xb + i]) - mu) * r; let d = gy[gb + i] * f32(w[wb + i]);
    s1 += d; s2 += d * xh;
  }
  let m1 = ${kind === 'rms' ? '0.0' : 'wg_sum(l, s1) / f32(n)'};
  let m2 = wg_sum(l, s2) / f32(n);
  for (var i = l; i < n; i += RW) {
    let xh = (f32(x[xb + i]) - mu) * r; let d = gy[gb + i] * f32(w[wb + i]);
    dx[ob + i] = r * (d - m1 - xh * m2);
  }
}
`;
  return { key, source };
}

export const NORM_COL_WG = 64;

/**
 * Partial column sums over a block of rows: pw[blk, c] = sum g * xh, pb[blk, c] = sum g.
 * Grid: (ceil(D / 64), blocks). Uniforms: [0]=rows, [1]=D, [2]=x offset, [3]=g offset, [4]=rows per block, [5]=stats offset.
 */
export function normBackwardDwKernel(kind: NormKind, xt: DType, bias: boolean) {
  const key = `norm_bwd_dw|${kind}|${xt}|${bias ? 'b' : 'nb'}`;
  const source = () => {
    let s = f16Header(xt) + uniformBlock(8) + storage(1, 'x', xt, false) + storage(2, 'gy', 'f32', false) + storage(3, 'stats', 'f32', false);
    s += storage(4, 'pw', 'f32', true) + (bias ? storage(5, 'pb', 'f32', true) : '');
    s += `@compute @workgroup_size(${NORM_COL_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let c = gid.x; let n = u(1u); let rows = u(0u); let rb = u(4u);
  if (c >= n) { return; }
  let blk = wg.y;
  let r0 = blk * rb; let r1 = min(r0 + rb, rows);
  var aw = 0.0; var ab = 0.0;
  for (var row = r0; row < r1; row++) {
    ${XHAT(kind)}
    let gv = gy[u(3u) + row * n + c];
    aw += gv * (f32(x[u(2u) + row * n + c]) - mu) * r;
    ab += gv;
  }
  pw[blk * n + c] = aw;
  ${bias ? 'pb[blk * n + c] = ab;' : ''}
}
`;
    return s;
  };
  return { key, source };
}
