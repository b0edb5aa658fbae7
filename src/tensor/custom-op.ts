// User-defined ops: a WGSL forward kernel (and optional backward), a float64 reference, and the
// result is a function usable like the built-in ops, with autograd, testable with checkOp.
//
// The user's WGSL defines `fn kernel(i: u32)`, run once for each i in [0, threads) (default:
// one per output element). Generated around it:
//   forward bindings:  in0..inN-1 (read), out (read_write)
//   backward bindings: in0..inN-1, y (forward output), gy (upstream gradient), out (the gradient
//                      of one input, same shape as it; one backward kernel per input)
//   helpers: param(k) -> f32 scalar parameter k; numel(t), rank(t), dim(t, d) for tensor t,
//            where t = 0..N-1 are the inputs and OUT, Y, GY name the others. Every buffer is
//            dense row-major f32 (or i32 for inputs declared i32), starting at index 0.
// Names main, P, u, ui, uf are reserved. A user kernel may index anywhere in its tensors, so
// nla cannot split its work: an operand beyond one storage binding is refused before anything
// is allocated or dispatched, naming the op, the operand and the limit. Definition is async: it compiles every kernel and
// throws an error naming the op and the line in the user's WGSL if one does not compile.
import { Uniforms, uniformBlock, storage } from '../kernels/uniforms.js';
import type { DType } from './dtype.js';
import { initGpu } from './device.js';
import { withGrad } from './autograd.js';
import { compileChecked, dispatch, grid } from './runtime.js';
import type { Nd } from './reference/nd.js';
import { fmt, numel } from './shape.js';
import { isGradEnabled, Tensor } from './tensor.js';
import { copyInto } from './ops/copy.js';
import { bindingLimit, type Binding } from './binding.js';
import { BYTES } from './dtype.js';

export interface KernelDef {
  /** WGSL defining `fn kernel(i: u32)`. */
  wgsl: string;
  /** Invocations (default: elements of the tensor being written). */
  threads?: (shapes: number[][], params: number[]) => number;
}

export type BackwardFn = (inputs: Tensor[], y: Tensor, gy: Tensor, params: number[]) => (Tensor | null)[];

export interface OpDef {
  name: string;
  /** Number of tensor inputs (1..4). */
  inputs: number;
  /** Storage dtype per input: 'f32' (default) or 'i32' (never differentiated). */
  inputDtypes?: DType[];
  /** Number of scalar f32 parameters (0..8), passed per call. */
  params?: number;
  /** Output shape from input shapes (default: the first input's shape). Output is f32. */
  outputShape?: (shapes: number[][], params: number[]) => number[];
  forward: KernelDef;
  /** One WGSL kernel per input (null: no gradient), or a function composing existing ops. */
  backward?: (KernelDef | null)[] | BackwardFn;
  /** Float64 reference of the forward, for checkOp. */
  reference: (xs: Nd[], params: number[]) => Nd;
}

export interface CustomOp {
  (inputs: Tensor | Tensor[], params?: number[]): Tensor;
  readonly opName: string;
  readonly reference: (xs: Nd[], params?: number[]) => Nd;
  readonly def: OpDef;
}

// Uniform words: [0]=threads, [1..8]=params, then per bound tensor t [numel, rank, 5 dims] at TINFO + 7t
// (at most 4 inputs + y + gy + out = 7 tensors: 58 words, inside the 64-word uniform slot).
const MAX_IN = 4, MAX_PARAMS = 8, MAX_RANK = 5;
const TINFO = 9, TW = 7;

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

function prelude(def: OpDef, dtypes: DType[], backward: boolean): string {
  const n = def.inputs;
  let s = uniformBlock(TINFO + TW * (n + (backward ? 3 : 1)));
  s += `fn param(k: u32) -> f32 { return uf(1u + k); }
fn numel(t: u32) -> u32 { return u(${TINFO}u + ${TW}u * t); }
fn rank(t: u32) -> u32 { return u(${TINFO + 1}u + ${TW}u * t); }
fn dim(t: u32, d: u32) -> u32 { return u(${TINFO + 2}u + ${TW}u * t + d); }
`;
  s += backward ? `const Y: u32 = ${n}u;\nconst GY: u32 = ${n + 1}u;\nconst OUT: u32 = ${n + 2}u;\n` : `const OUT: u32 = ${n}u;\n`;
  for (let k = 0; k < n; k++) s += storage(k + 1, `in${k}`, dtypes[k], false);
  if (backward) s += storage(n + 1, 'y', 'f32', false) + storage(n + 2, 'gy', 'f32', false) + storage(n + 3, 'out', 'f32', true);
  else s += storage(n + 1, 'out', 'f32', true);
  return s;
}

const MAIN = `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = g.x + g.y * nw.x * 64u;
  if (i >= u(0u)) { return; }
  kernel(i);
}
`;

interface Compiled { key: string; source: () => string; preludeLines: number; k: KernelDef }

function compile(def: OpDef, dtypes: DType[], k: KernelDef, tag: string): Compiled {
  const pre = prelude(def, dtypes, tag !== 'forward');
  const code = pre + k.wgsl + MAIN;
  return { key: `custom|${def.name}|${tag}|${dtypes.join(',')}|${hash(code)}`, source: () => code, preludeLines: pre.split('\n').length - 1, k };
}

async function checkCompiles(def: OpDef, c: Compiled, tag: string): Promise<void> {
  const device = (await initGpu()).device;
  // The error is reported below; its own scope keeps it out of the batch's. Popped before the
  // first await (compileChecked creates the module synchronously), so no other scope interleaves.
  device.pushErrorScope('validation');
  const checked = compileChecked({ key: c.key, source: c.source, buffers: [] });
  const popped = device.popErrorScope();
  try {
    await checked;
  } catch (e) {
    const msg = (e as Error).message.split('\n').slice(1).map((l) => l.replace(/line (\d+):(\d+)/, (_, a, b) => `line ${Number(a) - c.preludeLines}:${b}`));
    throw new Error(`defineOp "${def.name}": the ${tag} WGSL does not compile:\n${msg.join('\n')}`);
  } finally {
    await popped;
  }
}

/** Dense, offset-0 copy when needed (user kernels index from 0). */
function dense0(t: Tensor): { t: Tensor; owned: boolean } {
  if (t.isContiguous && t.offset === 0) return { t, owned: false };
  const c = Tensor.empty(t.shape, t.dtype);
  copyInto(c, t);
  return { t: c, owned: true };
}

/** Refuse (by name) an operand whose data is beyond one storage binding. */
function fitsBinding(op: string, what: string, shape: readonly number[], dtype: DType): void {
  const bytes = numel(shape) * BYTES[dtype], limit = bindingLimit();
  if (bytes > limit) {
    throw new Error(`${op}: ${what} ${fmt(shape)} (${bytes} B) is beyond this GPU's maxStorageBufferBindingSize of ${limit} B; a custom op binds each tensor whole (call it on slices)`);
  }
}

/** The tensor's data (dense, offset 0) as a binding: its buffer may be a larger pooled size class. */
const dataBinding = (t: Tensor): Binding => (t.buffer.size <= bindingLimit() ? t.buffer : { buffer: t.buffer, offset: 0, size: Math.max(4, Math.ceil((t.size * BYTES[t.dtype]) / 4) * 4) });

function launch(c: Compiled, bound: Tensor[], out: Tensor, params: number[]): void {
  const shapes = [...bound, out].map((t) => [...t.shape]);
  const threads = c.k.threads ? c.k.threads(shapes, params) : out.size;
  const u = new Uniforms(TINFO + TW * shapes.length).set(0, threads);
  params.forEach((p, i) => u.setF(1 + i, p));
  shapes.forEach((s, t) => u.set(TINFO + TW * t, numel(s)).set(TINFO + TW * t + 1, s.length).setAll(TINFO + TW * t + 2, s));
  const ds = bound.map(dense0);
  if (threads > 0) dispatch({ key: c.key, source: c.source, buffers: [...ds.map((d) => dataBinding(d.t)), dataBinding(out)], uniforms: u.u32, workgroups: grid(Math.ceil(threads / 64)) });
  for (const d of ds) if (d.owned) d.t.dispose();
}

/** Define an op from WGSL kernels and a float64 reference; compiles (and checks) every kernel now. */
export async function defineOp(def: OpDef): Promise<CustomOp> {
  const { name, inputs: n } = def;
  if (!/^[A-Za-z_][\w.-]*$/.test(name)) throw new Error(`defineOp: bad op name ${JSON.stringify(name)}`);
  if (!(n >= 1 && n <= MAX_IN)) throw new Error(`defineOp "${name}": inputs must be 1..${MAX_IN}, got ${n}`);
  const np = def.params ?? 0;
  if (np > MAX_PARAMS) throw new Error(`defineOp "${name}": at most ${MAX_PARAMS} params`);
  const dtypes = def.inputDtypes ?? Array<DType>(n).fill('f32');
  if (dtypes.length !== n || dtypes.some((d) => d !== 'f32' && d !== 'i32')) throw new Error(`defineOp "${name}": inputDtypes must list 'f32' or 'i32' for each of the ${n} inputs`);
  const fwd = compile(def, dtypes, def.forward, 'forward');
  await checkCompiles(def, fwd, 'forward');
  let bwd: (Compiled | null)[] | undefined;
  if (Array.isArray(def.backward)) {
    if (def.backward.length !== n) throw new Error(`defineOp "${name}": backward lists ${def.backward.length} kernels for ${n} inputs`);
    bwd = def.backward.map((k, i) => (k ? compile(def, dtypes, k, `backward[${i}]`) : null));
    for (const [i, c] of bwd.entries()) if (c) await checkCompiles(def, c, `backward[${i}]`);
  }

  const op = (arg: Tensor | Tensor[], params: number[] = []): Tensor => {
    const xs = Array.isArray(arg) ? arg : [arg];
    if (xs.length !== n) throw new Error(`${name}: expects ${n} input(s), got ${xs.length}`);
    if (params.length !== np) throw new Error(`${name}: expects ${np} param(s), got ${params.length}`);
    xs.forEach((x, i) => {
      x.assertAlive(name);
      if (x.dtype !== dtypes[i]) throw new Error(`${name}: input ${i} ${fmt(x.shape)} must be ${dtypes[i]}, got ${x.dtype}`);
      if (x.rank > MAX_RANK) throw new Error(`${name}: input ${i} ${fmt(x.shape)} has rank above ${MAX_RANK}`);
    });
    const shapes = xs.map((x) => [...x.shape]);
    const outShape = def.outputShape ? def.outputShape(shapes, params) : shapes[0];
    if (!Array.isArray(outShape) || outShape.length > MAX_RANK || outShape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new Error(`${name}: outputShape returned ${JSON.stringify(outShape)} for inputs ${shapes.map(fmt).join(', ')}`);
    }
    xs.forEach((x, i) => fitsBinding(name, `input ${i}`, x.shape, x.dtype));
    fitsBinding(name, 'output', outShape, 'f32');
    const y = Tensor.empty(outShape, 'f32');
    launch(fwd, xs, y, params);
    const diff = xs.map((x, i) => dtypes[i] === 'f32' && x.requiresGrad && isGradEnabled());
    // A missing gradient rule would silently cut the graph; say so instead.
    diff.forEach((d, i) => {
      if (d && (!def.backward || (bwd && !bwd[i]))) throw new Error(`${name}: input ${i} ${fmt(xs[i].shape)} requires grad but the op defines no backward for it (detach it or run under noGrad)`);
    });
    if (!diff.some(Boolean)) return y;
    return withGrad(name, y, xs, (g) => {
      y.assertAlive(`${name} backward (its output was disposed before backward)`);
      if (typeof def.backward === 'function') return def.backward(xs, y, g, params);
      const gy = dense0(g.dtype === 'f32' ? g : g.cast('f32'));
      const grads = bwd!.map((c, i) => {
        if (!c || !diff[i]) return null;
        const dx = Tensor.empty(xs[i].shape, 'f32');
        launch(c, [...xs, y, gy.t], dx, params);
        return dx;
      });
      if (gy.owned) gy.t.dispose();
      return grads;
    });
  };
  return Object.assign(op, { opName: name, reference: (xs: Nd[], params: number[] = []) => def.reference(xs, params), def });
}
