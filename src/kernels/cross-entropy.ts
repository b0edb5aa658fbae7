// Fused cross-entropy / token log-probs. The forward row kernel computes logsumexp and picks
// the target logit in one pass over the logits (no softmax in memory) and saves lse and the
// row weight for the backward, which recomputes softmax per element:
//   dlogits = sign * g * w * (exp(x - lse) - onehot(t)).
// sign = +1 gives -log p(t) (cross-entropy), sign = -1 gives log p(t) (token log-probs).
// With a bias (a [V] vector added to every row, a probe's), both read x + bias, so the biased
// logits are never written: a pass over [rows, V] less each way.
import type { DType } from '../tensor/dtype.js';
import { f16Header, ONLINE_LSE, ROW_CHUNK_MAIN, rowPrelude, type RowMode } from './softmax.js';
import { storage, uniformBlock } from './uniforms.js';

/** Forward uniforms: [0]=rows, [1]=V, [2]=logits offset, [3]=targets offset, [4]=ignoreIndex (i32),
 * [5]=has ignore, [6]=sign (f32), [7]=mask offset, [8..10]=loss, lse and w offsets, [11]=bias offset. */
export function ceForwardKernel(dtype: DType, masked: boolean, mode: RowMode = 'wg', biased = false) {
  const key = `ce_fwd|${dtype}|${masked ? 'mask' : 'nomask'}|${mode}${biased ? '|bias' : ''}`;
  const source = () => {
    let b = 1;
    let s = f16Header(dtype) + uniformBlock(12) + storage(b++, 'a', dtype, false) + storage(b++, 'tg', 'i32', false);
    if (masked) s += storage(b++, 'mask', 'f32', false);
    if (biased) s += storage(b++, 'bias', 'f32', false);
    s += storage(b++, 'loss', 'f32', true) + storage(b++, 'lse_out', 'f32', true) + storage(b++, 'w_out', 'f32', true);
    s += rowPrelude(mode);
    s += `  let n = u(1u); let base = u(2u) + row * n;\n`;
    const x = (i: string) => `f32(a[base + ${i}])` + (biased ? ` + bias[u(11u) + ${i}]` : '');
    s += ONLINE_LSE(x);
    s += `  if (l == 0u) {
    let t = tg[u(3u) + row];
    // Out-of-range targets are clamped (the op checks them on the CPU when it can).
    let tc = u32(clamp(t, 0, i32(n) - 1));
    var w = ${masked ? 'mask[u(7u) + row]' : '1.0'};
    if (u(5u) != 0u && t == ui(4u)) { w = 0.0; }
    let lse = M + log(S);
    loss[u(8u) + row] = select(0.0, w * uf(6u) * (lse - (${x('tc')})), w != 0.0);
    lse_out[u(9u) + row] = lse;
    w_out[u(10u) + row] = w;
  }
}
`;
    return s;
  };
  return { key, source };
}

/** Backward over the [rows, V] grid of rowChunkGrid. Uniforms: [0]=rows, [1]=V, [2]=logits offset,
 * [3]=targets offset, [4]=g offset, [5]=g stride, [6]=sign (f32), [7..9]=lse, w and dx offsets,
 * [10]=bias offset (binding 6 when biased; dx follows). */
export function ceBackwardKernel(dtype: DType, biased = false) {
  const key = `ce_bwd|${dtype}${biased ? '|bias' : ''}`;
  const source = () =>
    f16Header(dtype) +
    uniformBlock(12) +
    storage(1, 'a', dtype, false) +
    storage(2, 'tg', 'i32', false) +
    storage(3, 'lse', 'f32', false) +
    storage(4, 'w', 'f32', false) +
    storage(5, 'gy', 'f32', false) +
    (biased ? storage(6, 'bias', 'f32', false) : '') +
    storage(biased ? 7 : 6, 'dx', 'f32', true) +
    ROW_CHUNK_MAIN(
      `let tc = u32(clamp(tg[u(3u) + row], 0, i32(n) - 1));
  let l0 = lse[u(7u) + row]; let wr = w[u(8u) + row];
  let gs = select(uf(6u) * gy[u(4u) + row * u(5u)] * wr, 0.0, wr == 0.0);
  let ab = u(2u) + row * n; let ob = u(9u) + row * n;`,
      // An ignored row writes exact zeros even if its logits hold inf.
      `dx[ob + j] = select(gs * (exp(f32(a[ab + j])${biased ? ' + bias[u(10u) + j]' : ''} - l0) - select(0.0, 1.0, j == tc)), 0.0, wr == 0.0);`,
    );
  return { key, source };
}
