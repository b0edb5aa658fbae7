// Helpers shared by the matmul variants: operand layout classification (which dimension, if
// any, can be read as vec4), stride canonicalisation, WGSL load helpers for f32/f16/bf16 storage,
// and adapter facts (software rasteriser SIMD width = subgroup size).
import { gpu } from '../../tensor/device.js';
import type { MatOperand, MatmulProblem } from './types.js';

/**
 * How a kernel reads one operand.
 *  A: 'vk' vec4 along K (row-major A), 'vm' vec4 along M (transposed A), 's' scalar loads.
 *  B: 'vn' vec4 along N (row-major B), 'vk' vec4 along K (transposed B), 's' scalar loads.
 */
export type AMode = 'vk' | 'vm' | 's';
export type BMode = 'vn' | 'vk' | 's';

/** Strides of size-1 dims never matter; zero them so views like [1,K] or [M,1] still qualify for vec4. */
export function canonical(op: MatOperand, rows: number, cols: number, batch: number): MatOperand {
  return {
    ...op,
    rowStride: rows === 1 ? 0 : op.rowStride,
    colStride: cols === 1 ? 0 : op.colStride,
    batchStride: batch === 1 ? 0 : op.batchStride,
  };
}

const aligned = (op: MatOperand, other: number) => op.offset % 4 === 0 && op.batchStride % 4 === 0 && other % 4 === 0;

/** vec4 along the operand's column dim (colStride 1), or its row dim (rowStride 1), or scalar. */
function vecDim(op: MatOperand): 'col' | 'row' | undefined {
  if (op.colStride === 1 && aligned(op, op.rowStride)) return 'col';
  if (op.rowStride === 1 && aligned(op, op.colStride)) return 'row';
  return undefined;
}

export function aModeOf(p: MatmulProblem): AMode {
  const a = canonical(p.a, p.m, p.k, p.batch);
  const d = vecDim(a);
  return d === 'col' ? 'vk' : d === 'row' ? 'vm' : 's';
}

export function bModeOf(p: MatmulProblem): BMode {
  const b = canonical(p.b, p.k, p.n, p.batch);
  const d = vecDim(b);
  return d === 'col' ? 'vn' : d === 'row' ? 'vk' : 's';
}

/** Offset/strides as the kernel indexes them: vec4 units for vec modes (the contiguous stride is implied). */
export function operandWords(op: MatOperand, vec: boolean): number[] {
  const q = vec ? 4 : 1;
  return [op.offset / q, op.batchStride / q, op.rowStride / q, op.colStride / q].map((v) => (vec ? Math.floor(v) : v));
}

/** WGSL storage element type and a load expression builder for an operand read as vec4 or scalar. */
export function loader(name: string, dtype: string, vec: boolean): { type: string; load: (idx: string) => string } {
  // 16-bit storage is read as packed u32 words and unpacked (f16 needs no shader-f16 feature,
  // bf16 has no WGSL type at all), and a vec4 of halves costs two 32-bit lane loads.
  if (dtype === 'f16') {
    if (vec) return { type: 'vec2<u32>', load: (i) => `h4(${name}[${i}])` };
    return { type: 'u32', load: (i) => `h1_${name}(${i})` };
  }
  if (dtype === 'bf16') {
    if (vec) return { type: 'vec2<u32>', load: (i) => `b4(${name}[${i}])` };
    return { type: 'u32', load: (i) => `b1_${name}(${i})` };
  }
  if (dtype !== 'f32') throw new Error(`matmul: unsupported operand dtype ${dtype}`);
  return { type: vec ? 'vec4<f32>' : 'f32', load: (i) => `${name}[${i}]` };
}

/**
 * The unpacking functions the loaders of these operands call ([name, dtype, read as vec4]).
 * bf16 is the top half of an f32: a shift or a mask, exact.
 */
export function halfHelpers(ops: [string, string, boolean][]): string {
  let s = '';
  if (ops.some(([, d, v]) => d === 'f16' && v)) s += `fn h4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }\n`;
  if (ops.some(([, d, v]) => d === 'bf16' && v)) {
    s += `fn b4(w: vec2<u32>) -> vec4<f32> { return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u)); }\n`;
  }
  for (const [n, d, v] of ops) {
    if (v) continue;
    if (d === 'f16') s += `fn h1_${n}(i: u32) -> f32 { let v = unpack2x16float(${n}[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u); }\n`;
    if (d === 'bf16') s += `fn b1_${n}(i: u32) -> f32 { let w = ${n}[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }\n`;
  }
  return s;
}

/**
 * Lanes per subgroup when the adapter is llvmpipe/lavapipe: its compute shaders run one
 * subgroup per SIMD register, so the width in the device name ("...-256-bits") fixes the size
 * (256 bits = 8 f32 lanes) and subgroup i is local invocations 8i..8i+7. 0 when unknown.
 */
export function softwareSubgroupLanes(): number {
  const g = gpu();
  if (!g.hasSubgroups || !g.info.isSoftware) return 0;
  const text = `${g.info.device} ${g.info.description} ${g.info.architecture}`;
  if (!/llvmpipe|lavapipe/i.test(text)) return 0;
  const m = /(\d+)[- ]bits/i.exec(text);
  const lanes = m ? Number(m[1]) / 32 : 0;
  return lanes === 4 || lanes === 8 || lanes === 16 ? lanes : 0;
}

/** Split a batch larger than the 65535 workgroup limit into chunks: yields [start, count]. */
export function* batchChunks(batch: number): Generator<[number, number]> {
  for (let s = 0; s < batch; s += 65535) yield [s, Math.min(65535, batch - s)];
}
