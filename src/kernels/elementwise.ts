// Elementwise kernels, generated from an expression over inputs x0..x2 and scalar params
// p0..p2. Inputs are read through per-input strides (0 on broadcast dims), so broadcasting
// never materialises. Two variants, side by side (`npm run bench -- rows` chose between them):
//
//  'flat': one element per invocation, coordinates recovered with a div/mod per dim. Suits a
//          hardware GPU (adjacent invocations touch adjacent addresses); the original kernel.
//  'odo':  each invocation handles `per` consecutive groups of 1 or 4 output elements and walks
//          the input offsets with an odometer (add a stride, carry into the next dim on wrap),
//          so a thread does one div/mod per dim in total instead of per element. Groups of 4
//          read and write vec4 when the layout allows. On lavapipe (llvmpipe) this is 3-5x
//          faster than 'flat': integer division is scalarised there and every invocation costs.
//
// Both run on a collapsed layout (planElementwise): size-1 dims dropped and adjacent dims merged
// when every stream is contiguous across them, so a dense or bias-broadcast op is rank 1 or 2.
import type { DType } from '../tensor/dtype.js';
import { MAIN_1D, storage, uniformBlock } from './uniforms.js';

export const EW_WG = 64;

/** Uniform word layout of 'flat': [0]=n, [1..3]=p0..p2, then out shape (rank words), then per input rank strides + offset. */
export function ewLayout(rank: number, nInputs: number) {
  return { shape: 4, input: (k: number) => 4 + rank + k * (rank + 1), words: 4 + rank + nInputs * (rank + 1) };
}

// Helpers available to every expression. erf: Abramowitz & Stegun 7.1.26 (|err| < 1.5e-7).
export const EW_HELPERS = `
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

/** Element o of a bf16 array bound as packed u32 words (the high half of an f32). */
export const bf16Read = (a: string, o: string) => `bitcast<f32>(select(${a}[(${o}) >> 1u] << 16u, ${a}[(${o}) >> 1u] & 0xffff0000u, ((${o}) & 1u) == 1u))`;

/** The 'flat' variant: one element per invocation over the (collapsed) rank. */
export function elementwiseKernel(expr: string, inputs: DType[], out: DType, rank: number, linear: boolean): EwKernel {
  const key = `ew|${expr}|${inputs.join(',')}|${out}|r${rank}|${linear ? 'lin' : 'str'}`;
  const source = () => {
    const L = ewLayout(rank, inputs.length);
    const f16 = inputs.includes('f16') || out === 'f16';
    let s = f16 ? 'enable f16;\n' : '';
    s += uniformBlock(L.words) + EW_HELPERS;
    inputs.forEach((dt, k) => (s += storage(k + 1, `a${k}`, dt === 'bf16' ? 'u32' : dt, false)));
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
    inputs.forEach((dt, k) => (s += `  let x${k} = ${dt === 'bf16' ? bf16Read(`a${k}`, `o${k}`) : `f32(a${k}[o${k}])`};\n`));
    const cast = out === 'f32' ? '' : out;
    s += `  out[gid] = ${cast}(${expr});\n}\n`;
    return s;
  };
  return { key, source };
}

// ---- planning: collapse dims, choose vec4 ------------------------------------------------------

/** One strided stream over the output shape (strides 0 on broadcast dims), in elements. */
export interface EwStream { strides: readonly number[]; offset: number; dtype: DType }

/**
 * How the 'odo' kernel reads an input: 'v' vec4 loads (inner stride 1, 4-aligned), 's' four
 * scalar loads at stride (any layout), 'b' one scalar load splatted (inner stride 0).
 * Scalar kernels (vec 1) use 's' for everything.
 */
export type EwMode = 'v' | 's' | 'b';

export interface EwPlan {
  /** Collapsed shape, outer to inner, at least one dim. */
  shape: number[];
  /** Collapsed strides per stream (inputs, then the output when it is strided). */
  strides: number[][];
  offsets: number[];
  /** 4 when the kernel works on groups of 4 inner elements. */
  vec: 1 | 4;
  modes: EwMode[];
  /** For strided outputs (copyInto) the output's mode; 'd' = dense output. */
  outMode: 'd' | 'v' | 's';
}

/** Drop size-1 dims and merge adjacent dims that are contiguous in every stream. */
export function collapseDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((st, k) => outStrides[k][last] === st[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((st, k) => (outStrides[k][last] = st[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((st, k) => outStrides[k].push(st[d]));
    }
  }
  if (!outShape.length) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}

/**
 * Plan an elementwise launch over `shape`: inputs as strided streams; `out` a strided stream for
 * copies into a view (undefined: a fresh dense output). vec4 is used when the inner dim is a
 * multiple of 4 and the output can be written as vec4 (`allowVec` false forces scalar groups).
 */
export function planElementwise(shape: readonly number[], inputs: EwStream[], out: EwStream | undefined, allowVec = true): EwPlan {
  const streams = out ? [...inputs, out] : inputs;
  // A dense output is a stream with contiguous strides: merging must respect it too.
  const dense: number[] = new Array<number>(shape.length);
  for (let d = shape.length - 1, acc = 1; d >= 0; d--) { dense[d] = acc; acc *= shape[d]; }
  const c = collapseDims(shape, out ? streams.map((s) => s.strides) : [...streams.map((s) => s.strides), dense]);
  const strides = c.strides.slice(0, streams.length);
  const offsets = streams.map((s) => s.offset);
  const r = c.shape.length;
  const inner = c.shape[r - 1];
  const aligned4 = (k: number) => offsets[k] % 4 === 0 && strides[k].every((s, d) => d === r - 1 || s % 4 === 0);
  const vecMode = (k: number): EwMode => (strides[k][r - 1] === 0 ? 'b' : strides[k][r - 1] === 1 && aligned4(k) ? 'v' : 's');
  let vec: 1 | 4 = allowVec && inner % 4 === 0 ? 4 : 1;
  let outMode: EwPlan['outMode'] = 'd';
  if (out) {
    const k = streams.length - 1;
    outMode = vec === 4 && vecMode(k) === 'v' ? 'v' : 's';
    if (outMode === 's') vec = 1;
  }
  const modes = inputs.map((_, k) => (vec === 4 ? vecMode(k) : 's'));
  return { shape: c.shape, strides, offsets, vec, modes, outMode };
}

// ---- the 'odo' kernel ---------------------------------------------------------------------------

/** Uniform words of 'odo': [0]=groups, [1..3]=p0..p2, [4..4+r)=dims inner first (inner in groups), then 2r words per stream. */
export function odoLayout(rank: number, streams: number) {
  return { dims: 4, stream: (k: number) => 4 + rank + 2 * rank * k, words: 4 + rank + 2 * rank * streams };
}

/**
 * Uniform words for a plan: per stream its offset, group strides inner first (gs_0 steps one
 * group along the inner dim; gs_d = stride of dim d) and the carries gs_d - n_{d-1} * gs_{d-1}
 * added when dim d-1 wraps. All in units of the stream's array element (vec4 for mode 'v').
 */
export function odoUniforms(plan: EwPlan, params: readonly (number | undefined)[]): Uint32Array {
  const r = plan.shape.length;
  const L = odoLayout(r, plan.strides.length);
  const words = new Uint32Array(Math.max(4, Math.ceil(L.words / 4) * 4));
  const f = new Float32Array(words.buffer);
  const V = plan.vec;
  const dims = plan.shape.slice().reverse();
  dims[0] /= V;
  let groups = 1;
  dims.forEach((d, i) => ((words[L.dims + i] = d), (groups *= d)));
  words[0] = groups;
  params.forEach((p, i) => (f[1 + i] = p ?? 0));
  plan.strides.forEach((st, k) => {
    const mode = k < plan.modes.length ? plan.modes[k] : plan.outMode === 'v' ? 'v' : 's';
    const q = mode === 'v' ? 4 : 1;
    const s = st.slice().reverse().map((v) => v / q);
    const gs = s.slice();
    gs[0] = mode === 'v' ? 1 : s[0] * V;
    const base = L.stream(k);
    words[base] = plan.offsets[k] / q;
    gs.forEach((v, d) => (words[base + 1 + d] = v >>> 0));
    for (let d = 1; d < r; d++) words[base + r + d] = (gs[d] - dims[d - 1] * gs[d - 1]) >>> 0;
  });
  return words;
}

/**
 * The 'odo' kernel for a plan's shape class. `per` groups per invocation. With `identity`
 * (expr 'x0', same input and output dtype) values are copied without an f32 round trip.
 */
export function odoKernel(expr: string, inputs: DType[], out: DType, plan: EwPlan, per: number, family = 'ew'): EwKernel {
  const r = plan.shape.length;
  const V = plan.vec;
  const strided = plan.outMode !== 'd';
  const identity = expr === 'x0' && inputs.length === 1 && inputs[0] === out;
  const key = `${family}|${expr}|${inputs.join(',')}|${out}|odo${r}|v${V}${plan.modes.join('')}${plan.outMode}|p${per}`;
  const source = () => {
    const L = odoLayout(r, plan.strides.length);
    const f16 = inputs.includes('f16') || out === 'f16';
    let s = f16 ? 'enable f16;\n' : '';
    s += uniformBlock(L.words) + EW_HELPERS;
    const args = inputs.map((_, k) => `x${k}: f32`).join(', ');
    s += `fn f(${args}${args ? ', ' : ''}p0: f32, p1: f32, p2: f32) -> f32 { return ${expr}; }\n`;
    if (V === 4 && inputs.includes('bf16')) throw new Error('odoKernel: bf16 inputs are read one element at a time (plan with vec 1)');
    inputs.forEach((dt, k) => (s += storage(k + 1, `a${k}`, dt === 'bf16' ? 'u32' : plan.modes[k] === 'v' ? `vec4<${dt}>` : dt, false)));
    s += storage(inputs.length + 1, 'out', V === 4 ? `vec4<${out}>` : out, true);
    s += MAIN_1D(EW_WG);
    s += `  let G = u(0u);\n  var gi = gid * ${per}u;\n  if (gi >= G) { return; }\n  let end = min(gi + ${per}u, G);\n`;
    s += `  let p0 = uf(1u); let p1 = uf(2u); let p2 = uf(3u);\n`;
    // Streams: inputs k, then the output (index inputs.length) when strided.
    const ns = plan.strides.length;
    for (let d = 0; d < r - 1; d++) s += `  let n${d} = u(${L.dims + d}u);\n`;
    // Decompose the first group index into coordinates (inner first).
    s += `  var q = gi;\n`;
    for (let d = 0; d < r - 1; d++) s += `  var c${d} = q % n${d}; q = q / n${d};\n`;
    for (let k = 0; k < ns; k++) {
      const b = L.stream(k);
      s += `  let gs${k} = u(${b + 1}u);\n`;
      for (let d = 1; d < r; d++) s += `  let k${k}_${d} = u(${b + r + d}u);\n`;
      let init = `u(${b}u) + ${r > 1 ? 'c0' : 'gi'} * gs${k}`;
      for (let d = 1; d < r; d++) init += ` + ${d === r - 1 ? 'q' : `c${d}`} * u(${b + 1 + d}u)`;
      s += `  var o${k} = ${init};\n`;
    }
    // 's' streams in vec mode read 4 scalars at element stride e = gs / 4.
    if (V === 4) inputs.forEach((_, k) => (s += plan.modes[k] === 's' ? `  let e${k} = gs${k} >> 2u;\n` : ''));
    s += `  for (; gi < end; gi++) {\n`;
    const sc = (v: string) => (identity ? v : `f32(${v})`);
    const load = (k: number, c: number) => sc(c === 0 ? `a${k}[o${k}]` : `a${k}[o${k} + ${c}u * e${k}]`);
    if (V === 1) {
      if (identity) s += `    let y = a0[o0];\n`;
      else {
        inputs.forEach((dt, k) => (s += `    let x${k} = ${dt === 'bf16' ? bf16Read(`a${k}`, `o${k}`) : `f32(a${k}[o${k}])`};\n`));
        s += `    let y = ${out === 'f32' ? '' : out}(f(${inputs.map((_, k) => `x${k}, `).join('')}p0, p1, p2));\n`;
      }
    } else {
      inputs.forEach((dt, k) => {
        const m = plan.modes[k];
        const T = identity ? `vec4<${dt}>` : 'vec4<f32>';
        if (m === 'v') s += `    let v${k} = ${T}(a${k}[o${k}]);\n`;
        else if (m === 'b') s += `    let v${k} = ${T}(${load(k, 0)});\n`;
        else s += `    let v${k} = ${T}(${[0, 1, 2, 3].map((c) => load(k, c)).join(', ')});\n`;
      });
      if (identity) s += `    let y = v0;\n`;
      else {
        const comp = (c: string) => `f(${inputs.map((_, k) => `v${k}.${c}, `).join('')}p0, p1, p2)`;
        s += `    let y = vec4<${out}>(vec4<f32>(${['x', 'y', 'z', 'w'].map(comp).join(', ')}));\n`;
      }
    }
    s += strided ? `    out[o${ns - 1}] = y;\n` : `    out[gi] = y;\n`;
    // Advance: one group along the inner dim, carrying into outer dims on wrap.
    for (let k = 0; k < ns; k++) s += `    o${k} += gs${k};\n`;
    if (r > 1) {
      let carry = '';
      for (let d = r - 2; d >= 0; d--) {
        const add = Array.from({ length: ns }, (_, k) => `o${k} += k${k}_${d + 1};`).join(' ');
        const inner = d === r - 2 ? '' : ` c${d + 1}++; ${carry}`;
        carry = `if (c${d} == n${d}) { c${d} = 0u; ${add}${inner} }`;
      }
      s += `    c0++; ${carry}\n`;
    }
    s += `  }\n}\n`;
    return s;
  };
  return { key, source };
}

// ---- variant choice -----------------------------------------------------------------------------

export type EwVariant = 'flat' | 'odo';

/**
 * Which variant runs, and how much work per invocation. `force` overrides the adapter-based
 * choice (tests force each path); `vec` false keeps 'odo' on scalar groups. Chosen with
 * `npm run bench -- rows` on lavapipe: vec4 groups at 4 per invocation (16 elements) and scalar
 * groups at 8 per invocation were the fastest or within noise of it at every shape measured.
 */
export const ewTuning: { force?: EwVariant; vec: boolean; per1: number; per4: number } = { vec: true, per1: 8, per4: 4 };
