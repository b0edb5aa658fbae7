// Tensors above maxBufferSize. One WebGPU buffer holds at most maxBufferSize bytes (4 GiB on
// lavapipe, 256 MiB-2 GiB on many GPUs), so a bigger tensor (a 7B model's f32 embedding) lives in
// several buffers ("pieces"), each holding whole rows of its first axis and starting at its own
// byte 0 (so every piece binds, whole or in ranges, as binding.ts binds any one buffer). Tensors
// made from the host (Tensor.from, checkpoint loading) take pieces, and so do the outputs of the
// ops that work over pieces when an input is in pieces (elementwise, copies, gradients, optimizer
// moments); any other output that big is still refused where it is created (pool.ts), before
// anything is allocated.
// Design: the tensor's Storage lists its pieces (each an ordinary Storage) with the element range
// each holds. A view whose elements all lie in one piece becomes an ordinary tensor over that
// piece (Tensor.view), so slicing rows is how ops work over pieces: the head and its fused
// log-probs/sampling run over vocabulary chunks cut at piece boundaries, matmul/linear against such
// a weight runs per piece and concatenates, the embedding gathers from (and scatters its gradient
// into) each piece the ids in its rows, elementwise ops and row ops run once per row range that
// lies in one piece of every operand (rowPieceRanges), the optimizers and the gradient norm once
// per element range (flatPieceRanges). Upload and readback go piece by piece. Every other op
// reaches for `tensor.buffer`, which refuses a multi-buffer tensor by the asking op's name, the
// tensor's size and the limit, before any dispatch.
import { BYTES, type DType } from './dtype.js';
import { acquire, bufferLimit } from './pool.js';
import { fmt, numel } from './shape.js';
import type { Storage, Tensor } from './tensor.js';

export interface Piece {
  storage: Storage;
  /** Elements [first, end) of the whole tensor that this piece holds, from its element 0. */
  first: number;
  end: number;
}

/** Rows of the first axis per piece, so each piece stays within the buffer limit (undefined: one row is too big). */
export function rowsPerPiece(shape: readonly number[], dtype: DType): number | undefined {
  if (shape.length < 1) return undefined;
  const rowElems = numel(shape.slice(1)), rowBytes = rowElems * BYTES[dtype];
  let per = Math.floor(bufferLimit().bytes / Math.max(1, rowBytes));
  // 16-bit pieces start on a whole u32 word (uploads and bf16 reads go by words).
  if (BYTES[dtype] < 4 && rowElems % 2 === 1) per -= per % 2;
  return per >= 1 ? per : undefined;
}

/** The pieces of a new tensor of `shape` (whole rows each, each its own pooled buffer). */
export function allocPieces(shape: readonly number[], dtype: DType, per: number, make: (buffer: GPUBuffer, bytes: number) => Storage, what: () => string): Piece[] {
  const rowElems = numel(shape.slice(1));
  const pieces: Piece[] = [];
  try {
    for (let lo = 0; lo < shape[0]; lo += per) {
      const hi = Math.min(shape[0], lo + per);
      const bytes = Math.max(4, (hi - lo) * rowElems * BYTES[dtype]);
      pieces.push({ storage: make(acquire(bytes, what), bytes), first: lo * rowElems, end: hi * rowElems });
    }
  } catch (e) {
    for (const p of pieces) p.storage.releaseRef();
    throw e;
  }
  return pieces;
}

/** The piece holding all of elements [first, end), if one does. */
export function pieceHolding(pieces: readonly Piece[], first: number, end: number): Piece | undefined {
  return pieces.find((p) => first >= p.first && end <= p.end);
}

export const isMulti = (t: Tensor): boolean => t.storage.pieces !== undefined;

/** The refusal of an op that does not work over pieces. */
export function multiError(op: string, t: Tensor): Error {
  const bytes = t.size * BYTES[t.dtype];
  return new Error(
    `${op}: tensor ${t.name ?? '#' + t.id} ${fmt(t.shape)} ${t.dtype} (${bytes} B) lives in ${t.storage.pieces!.length} buffers, beyond this GPU's maxBufferSize of ${t.storage.pieceLimit} B; ` +
      'only upload, readback, embedding, matmul/linear, the head ops (headLogProbs, headSample), the optimizers and, along its rows, elementwise ops, copies, reductions, norms, softmax, SwiGLU, cross-entropy and takeAlong take such a tensor (slice it by rows for anything else)',
  );
}

/**
 * Where a tensor's buffer was asked for, from the stack (only for the refusal's message): the
 * outermost frame of the run of engine frames (src/tensor, src/kernels) the call came through,
 * e.g. "softmax (src/tensor/ops/softmax.ts:73)", with the innermost helper after "via".
 */
export function askingOp(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1)
    .map((l) => l.match(/at (?:async )?(?:(\S+) \()?(?:file:\/\/)?(.*?):(\d+):\d+\)?$/))
    .filter((m): m is RegExpMatchArray => !!m)
    .map((m) => ({ name: (m[1] ?? '(anonymous)').replace(/^(Module|Object|Tensor)\./, ''), file: m[2].replace(/^.*?[/\\](src|dist)[/\\]/, '$1/'), line: m[3] }))
    .filter((f) => !/tensor[/\\](tensor|pieces)\.[jt]s$/.test(f.file));
  let i = 0;
  while (i + 1 < frames.length && /^(src|dist)\/(tensor|kernels)\//.test(frames[i + 1].file)) i++;
  const f = frames[i];
  if (!f) return 'a tensor op';
  return `${f.name} (${f.file}:${f.line})${i > 0 ? ` via ${frames[0].name}` : ''}`;
}

/**
 * Row cuts of axis 0 (of `rows` rows) at which tensor t's pieces end: t's row r starts at element
 * offset + r * strides[0], so a piece ending at element e cuts before the first row at or past e.
 */
function rowCuts(t: Tensor, rows: number): number[] {
  const out: number[] = [];
  const st = t.strides[0];
  if (!t.storage.pieces || st <= 0) return out;
  for (const p of t.storage.pieces) {
    const r = Math.ceil((p.end - t.offset) / st);
    if (r > 0 && r < rows) out.push(r);
  }
  return out;
}

/**
 * Row ranges [lo, hi) of axis 0 (of `rows` rows) such that the rows [lo, hi) of every tensor in
 * `ts` (each with `rows` rows on axis 0) lie in one of its buffers: the union of their piece cuts.
 * The caller checks its slices (a strided view may still straddle pieces; it is refused by name).
 */
export function rowPieceRanges(ts: readonly Tensor[], rows: number): [number, number][] {
  const cuts = [...new Set(ts.flatMap((t) => rowCuts(t, rows)))].sort((a, b) => a - b);
  const out: [number, number][] = [];
  let lo = 0;
  for (const c of [...cuts, rows]) {
    if (c > lo) out.push([lo, c]);
    lo = c;
  }
  return out;
}

/**
 * Element ranges [lo, hi) of dense tensors of the same size (some in pieces) where every tensor's
 * elements lie in one buffer, with each tensor's buffer and element offset there: how the
 * optimizers, the gradient norm and the NaN check walk a parameter in pieces.
 */
export function* flatPieceRanges(op: string, ts: readonly Tensor[]): Generator<{ lo: number; hi: number; parts: { buffer: GPUBuffer; offset: number }[] }> {
  const size = ts[0].size;
  const cuts = new Set<number>();
  for (const t of ts) {
    if (t.size !== size) throw new Error(`${op}: tensors of ${size} and ${t.size} elements walked together`);
    if (!t.storage.pieces) continue;
    if (!t.isContiguous) throw multiError(`${op} (a strided view)`, t);
    for (const p of t.storage.pieces) for (const e of [p.first - t.offset, p.end - t.offset]) if (e > 0 && e < size) cuts.add(e);
  }
  let lo = 0;
  for (const hi of [...[...cuts].sort((a, b) => a - b), size]) {
    if (hi <= lo) continue;
    const parts = ts.map((t) => {
      if (!t.storage.pieces) return { buffer: t.buffer, offset: t.offset + lo };
      const p = pieceHolding(t.storage.pieces, t.offset + lo, t.offset + hi)!;
      return { buffer: p.storage.buffer, offset: t.offset + lo - p.first };
    });
    yield { lo, hi, parts };
    lo = hi;
  }
}

/**
 * Row ranges [lo, hi) of the first axis of `w` (a dense [V, ...] tensor) of at most `chunk` rows,
 * cut at its piece boundaries so that each range's slice is an ordinary one-buffer tensor.
 */
export function rowRanges(w: Tensor, chunk: number): [number, number][] {
  const V = w.shape[0];
  const cuts = [V];
  const pieces = w.storage.pieces;
  if (pieces) {
    const rowElems = w.strides[0];
    if (!w.isContiguous) throw multiError('rows of a strided view', w);
    for (const p of pieces) {
      const r = (p.end - w.offset) / rowElems;
      if (r > 0 && r < V) cuts.push(Math.round(r));
    }
  }
  cuts.sort((a, b) => a - b);
  const out: [number, number][] = [];
  let lo = 0;
  for (const cut of cuts) {
    for (; lo < cut; lo = Math.min(cut, lo + chunk)) out.push([lo, Math.min(cut, lo + chunk)]);
  }
  return out;
}

/** Rows [lo, hi) of axis 0 of t as a plain view (no autograd): inside one piece, an ordinary tensor. */
export function rowsView(t: Tensor, lo: number, hi: number): Tensor {
  return t.view([hi - lo, ...t.shape.slice(1)], [...t.strides], t.offset + lo * t.strides[0]);
}
