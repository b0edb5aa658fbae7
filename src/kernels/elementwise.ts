// Elementwise kernels, generated from an expression over inputs x0..x2 and scalar params
// p0..p2. Inputs are read through per-input strides (0 on broadcast dims), so broadcasting
// never materialises; a fast path indexes linearly when every input is dense and unbroadcast.
import type { DType } from '../tensor/dtype.js';
import { MAIN_1D, storage, uniformBlock } from './uniforms.js';

export const EW_WG = 256;

/** Uniform word layout: [0]=n, [1..3]=p0..p2, then out shape (rank words), then per input rank strides + offset. */
export function ewLayout(rank: number, nInputs: number) {
  return { shape: 4, input: (k: number) => 4 + rank + k * (rank + 1), words: 4 + rank + nInputs * (rank + 1) };
}

// Helpers available to every expression. erf: Abramowitz & Stegun 7.1.26 (|err| < 1.5e-7).
const HELPERS = `
fn erf_(x: f32) -> f32 {
  let s = sign(x); let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}
fn tanh_(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn sigmoid_(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
const GC: f32 = 0.7978845608028654; // sqrt(2/pi)
fn gelu_tanh_(x: f32) -> f32 { return 0.5 * x * (1.0 + tanh_(GC * (x + 0.044715 * x * x * x))); }
fn gelu_tanh_grad_(x: f32) -> f32 {
  let t = tanh_(GC * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GC * (1.0 + 3.0 * 0.044715 * x * x);
}
fn gelu_erf_(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_(x * 0.7071067811865476)); }
fn gelu_erf_grad_(x: f32) -> f32 { return 0.5 * (1.0 + erf_(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x); }
fn silu_grad_(x: f32) -> f32 { let s = sigmoid_(x); return s * (1.0 + x * (1.0 - s)); }
fn b2f(c: bool) -> f32 { return select(0.0, 1.0, c); }
`;

export interface EwKernel { key: string; source: () => string; }

export function elementwiseKernel(expr: string, inputs: DType[], out: DType, rank: number, linear: boolean): EwKernel {
  const key = `ew|${expr}|${inputs.join(',')}|${out}|r${rank}|${linear ? 'lin' : 'str'}`;
  const source = () => {
    const L = ewLayout(rank, inputs.length);
    const f16 = inputs.includes('f16') || out === 'f16';
    let s = f16 ? 'enable f16;\n' : '';
    s += uniformBlock(L.words) + HELPERS;
    inputs.forEach((dt, k) => (s += storage(k + 1, `a${k}`, dt, false)));
    s += storage(inputs.length + 1, 'out', out, true);
    s += MAIN_1D(EW_WG);
    s += `  let n = u(0u);\n  if (gid >= n) { return; }\n  let p0 = uf(1u); let p1 = uf(2u); let p2 = uf(3u);\n`;
    if (linear) {
      inputs.forEach((_, k) => (s += `  let o${k} = u(${L.input(k) + rank}u) + gid;\n`));
    } else {
      inputs.forEach((_, k) => (s += `  var o${k} = u(${L.input(k) + rank}u);\n`));
      s += `  var r = gid;\n`;
      for (let d = rank - 1; d >= 0; d--) {
        s += `  { let dim = u(${L.shape + d}u); let c = r % dim; r = r / dim;`;
        inputs.forEach((_, k) => (s += ` o${k} += c * u(${L.input(k) + d}u);`));
        s += ` }\n`;
      }
    }
    inputs.forEach((_, k) => (s += `  let x${k} = f32(a${k}[o${k}]);\n`));
    const cast = out === 'f32' ? '' : out;
    s += `  out[gid] = ${cast}(${expr});\n}\n`;
    return s;
  };
  return { key, source };
}
