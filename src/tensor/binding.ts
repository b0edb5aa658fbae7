// What a kernel binds: a whole buffer, or a byte range of one. WebGPU caps one storage binding
// at maxStorageBufferBindingSize (128 MiB on lavapipe, 2-4 GiB on GPUs) while a buffer may reach
// maxBufferSize (4 GiB here), so a tensor bigger than one binding (a 0.5B model's embedding)
// lives in one buffer and the ops that meet it bind the part they touch, splitting their work
// when even that part is too big. Limits are read from the device, never assumed.
import { gpu } from './device.js';

export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/** Bytes a binding covers (a range's size, or the whole buffer's). */
export const boundBytes = (b: Binding): number => b.size;

let lowered: number | undefined = process.env.NLA_BINDING_LIMIT ? Number(process.env.NLA_BINDING_LIMIT) : undefined;

/** The device's largest storage binding, in bytes (or the lower limit set by setBindingLimit). */
export const bindingLimit = (): number => {
  const device = gpu().device.limits.maxStorageBufferBindingSize;
  return lowered === undefined ? device : Math.min(device, lowered);
};

/**
 * Treat the binding limit as `bytes` when that is below the device's (undefined: the device's
 * again). For tests: small tensors then take the split paths that only huge ones take on a
 * real device. NLA_BINDING_LIMIT sets it for a whole process.
 */
export function setBindingLimit(bytes: number | undefined): void {
  if (bytes !== undefined && !(Number.isInteger(bytes) && bytes >= 4 * offsetAlign() && bytes % 4 === 0)) {
    throw new Error(`setBindingLimit: ${bytes} must be a multiple of 4 of at least 4x the offset alignment (${4 * offsetAlign()} B)`);
  }
  lowered = bytes;
}

/** Alignment of a binding's start (at least 4 so f16/bf16 pairs stay whole in their u32 word). */
export const offsetAlign = (): number => Math.max(4, gpu().device.limits.minStorageBufferOffsetAlignment);

/**
 * Bind elements [first, end) (each `bytesPer` bytes) of `buffer`: the whole buffer when it fits
 * one binding (nothing changes for ordinary tensors), else the aligned range around them.
 * `base` is the element the binding starts at: kernels index with offsets minus base.
 * Undefined when the range itself is beyond one binding (the caller splits its work).
 */
export function bindElements(buffer: GPUBuffer, bytesPer: number, first: number, end: number): { binding: Binding; base: number } | undefined {
  const limit = bindingLimit();
  if (buffer.size <= limit) return { binding: buffer, base: 0 };
  const align = offsetAlign();
  const start = Math.floor((first * bytesPer) / align) * align;
  const stop = Math.min(buffer.size, Math.ceil((end * bytesPer) / 4) * 4);
  const size = Math.max(4, stop - start);
  if (size > limit) return undefined;
  return { binding: { buffer, offset: start, size }, base: start / bytesPer };
}

/** Elements [first, end) a strided view touches: its offset to its last element, inclusive. */
export function spanOf(shape: readonly number[], strides: readonly number[], offset: number): [number, number] {
  if (shape.some((d) => d === 0)) return [offset, offset];
  let last = offset;
  shape.forEach((d, i) => (last += (d - 1) * strides[i]));
  return [offset, last + 1];
}

/**
 * Rows [lo, hi) of a dense [rows, rowElems] matrix starting at element `offset` of `buffer`, in
 * as few chunks as fit one binding each (one chunk, the whole buffer, when it fits already).
 */
export function* rowChunks(buffer: GPUBuffer, bytesPer: number, offset: number, rows: number, rowElems: number): Generator<{ lo: number; hi: number; binding: Binding; base: number }> {
  if (buffer.size <= bindingLimit()) {
    yield { lo: 0, hi: rows, binding: buffer, base: 0 };
    return;
  }
  const per = Math.floor((bindingLimit() - offsetAlign()) / Math.max(1, rowElems * bytesPer));
  if (per < 1) throw new Error(`nla: one row of ${rowElems} elements (${rowElems * bytesPer} B) is beyond this GPU's maxStorageBufferBindingSize of ${bindingLimit()} B`);
  for (let lo = 0; lo < rows; lo += per) {
    const hi = Math.min(rows, lo + per);
    const b = bindElements(buffer, bytesPer, offset + lo * rowElems, offset + hi * rowElems)!;
    yield { lo, hi, ...b };
  }
}

/**
 * Elements [lo, hi) of flat tensors of `size` elements each (each at its own element offset in
 * its own buffer), in chunks where every one of them fits a binding: `offsets[i]` indexes tensor
 * i inside `bindings[i]`. One chunk of whole buffers when they fit already.
 */
export function* flatChunks(parts: { buffer: GPUBuffer; bytesPer: number; offset: number }[], size: number): Generator<{ lo: number; hi: number; bindings: Binding[]; offsets: number[] }> {
  const limit = bindingLimit();
  if (parts.every((p) => p.buffer.size <= limit)) {
    yield { lo: 0, hi: size, bindings: parts.map((p) => p.buffer), offsets: parts.map((p) => p.offset) };
    return;
  }
  const widest = Math.max(...parts.map((p) => p.bytesPer));
  const per = Math.floor((limit - 2 * offsetAlign()) / widest / 1024) * 1024;
  for (let lo = 0; lo < size; lo += per) {
    const hi = Math.min(size, lo + per);
    const b = parts.map((p) => bindElements(p.buffer, p.bytesPer, p.offset + lo, p.offset + hi)!);
    yield { lo, hi, bindings: b.map((x) => x.binding), offsets: b.map((x, i) => parts[i].offset + lo - x.base) };
  }
}

/**
 * One operand of a row op over [rows, ...]: `rowElems` elements per row from element `offset`
 * (its rows split with the op's; the kernel indexes it through an offset uniform), or `whole`
 * elements read in full by every chunk (a norm's weight).
 */
export type RowOperand =
  | { buffer: GPUBuffer; bytesPer: number; offset: number; rowElems: number }
  | { buffer: GPUBuffer; bytesPer: number; offset: number; whole: number };

/**
 * Rows [lo, hi) of a row op in chunks where every operand fits one binding: `bindings[i]` and
 * `offsets[i]` (operand i's element offset inside its binding, for the kernel's uniforms). One
 * chunk of whole buffers when they all fit already.
 */
export function* rowSplit(op: string, rows: number, operands: RowOperand[]): Generator<{ lo: number; hi: number; bindings: Binding[]; offsets: number[] }> {
  const limit = bindingLimit(), align = offsetAlign();
  if (operands.every((o) => o.buffer.size <= limit)) {
    yield { lo: 0, hi: rows, bindings: operands.map((o) => o.buffer), offsets: operands.map((o) => o.offset) };
    return;
  }
  let per = rows;
  const whole = operands.map((o) => {
    if (!('whole' in o)) {
      per = Math.min(per, Math.floor((limit - align) / Math.max(1, o.rowElems * o.bytesPer)));
      return undefined;
    }
    const b = bindElements(o.buffer, o.bytesPer, o.offset, o.offset + o.whole);
    if (!b) throw new Error(`${op}: an operand of ${o.whole} elements read whole by every row is beyond this GPU's maxStorageBufferBindingSize of ${limit} B`);
    return b;
  });
  if (per < 1) {
    throw new Error(`${op}: one row (${operands.map((o) => ('rowElems' in o ? o.rowElems * o.bytesPer : 0)).filter(Boolean).join(' + ')} B across its operands) is beyond this GPU's maxStorageBufferBindingSize of ${limit} B`);
  }
  for (let lo = 0; lo < rows; lo += per) {
    const hi = Math.min(rows, lo + per);
    const bound = operands.map((o, i) => {
      if ('whole' in o) return whole[i]!;
      return bindElements(o.buffer, o.bytesPer, o.offset + lo * o.rowElems, o.offset + hi * o.rowElems)!;
    });
    const first = operands.map((o) => ('whole' in o ? o.offset : o.offset + lo * o.rowElems));
    yield { lo, hi, bindings: bound.map((b) => b.binding), offsets: bound.map((b, i) => first[i] - b.base) };
  }
}
