// Helpers shared by the matmul variants: operand layout classification (which dimension, if
// any, can be read as vec4), stride canonicalisation, WGSL load helpers for f32/f16 storage,
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
  if (dtype === 'f16') {
    // f16 storage is read as packed u32 words and unpacked, so it needs no shader-f16 feature,
    // and a vec4 of halves costs two 32-bit lane loads instead of four.
    if (vec) return { type: 'vec2<u32>', load: (i) => `h4(${name}[${i}])` };
    return { type: 'u32', load: (i) => `h1_${name}(${i})` };
  }
  if (dtype !== 'f32') throw new Error(`matmul: unsupported operand dtype ${dtype}`);
  return { type: vec ? 'vec4<f32>' : 'f32', load: (i) => `${name}[${i}]` };
}

/** Helper functions the f16 loaders call (harmless when unused). */
export function f16Helpers(names: string[]): string {
  let s = `fn h4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }\n`;
  for (const n of names) s += `fn h1_${n}(i: u32) -> f32 { let v = unpack2x16float(${n}[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u); }\n`;
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
