// Tensors above maxBufferSize. One WebGPU buffer holds at most maxBufferSize bytes (4 GiB on
// lavapipe, 256 MiB-2 GiB on many GPUs), so a bigger tensor (a 7B model's f32 embedding) lives in
// several buffers ("pieces"), each holding whole rows of its first axis and starting at its own
// byte 0 (so every piece binds, whole or in ranges, as binding.ts binds any one buffer). Only
// tensors made from the host (Tensor.from, checkpoint loading) take pieces; an op's output that
// big is still refused where it is created (pool.ts), before anything is allocated.
// Design: the tensor's Storage lists its pieces (each an ordinary Storage) with the element range
// each holds. A view whose elements all lie in one piece becomes an ordinary tensor over that
// piece (Tensor.view), so slicing rows is how ops work over pieces: the head and its fused
// log-probs/sampling run over vocabulary chunks cut at piece boundaries, matmul/linear against such
// a weight runs per piece and concatenates, the embedding gathers from each piece the ids in its
// rows. Upload and readback go piece by piece. Every other op reaches for `tensor.buffer`, which
// refuses a multi-buffer tensor by the asking op's name, the tensor's size and the limit, before
// any dispatch. Gradients into such a tensor are refused by name (not implemented).
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
      'only upload, readback, embedding, matmul/linear and the head ops (headLogProbs, headSample) take such a tensor (slice it by rows for anything else)',
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

/** Refuse a gradient into a multi-buffer tensor where the op would record one. */
export function refuseMultiGrad(op: string, t: Tensor, gradEnabled: boolean): void {
  if (isMulti(t) && t.requiresGrad && gradEnabled) throw new Error(`${multiError(op, t).message}; gradients into such a tensor are not implemented (run under noGrad, or set requiresGrad false)`);
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
