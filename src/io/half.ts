// Conversions between f32 and the two 16-bit float storage formats.
// f16 uses @petamoriken/float16 (correct round-to-nearest-even, subnormals, inf/NaN);
// bf16 is the top half of an f32, so it is done with bit shifts.
import { getFloat16, setFloat16 } from '@petamoriken/float16';

let f16Table: Float32Array | undefined;
/** All 65536 f16 bit patterns decoded once: a table lookup beats per-element decoding. */
function f16DecodeTable(): Float32Array {
  if (!f16Table) {
    const view = new DataView(new ArrayBuffer(2));
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      view.setUint16(0, i, true);
      f16Table[i] = getFloat16(view, 0, true);
    }
  }
  return f16Table;
}

export function decodeF16(bits: Uint16Array): Float32Array {
  const table = f16DecodeTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

export function encodeF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) setFloat16(view, i * 2, values[i]!, true);
  return out;
}

export function decodeBf16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u32[i] = bits[i]! << 16;
  return out;
}

/** f32 -> bf16 with round-to-nearest-even (as torch does); NaN stays a quiet NaN. */
export function encodeBf16(values: Float32Array): Uint16Array {
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = u32[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) {
      out[i] = ((b >>> 16) & 0x8000) | 0x7fc0;
    } else {
      out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    }
  }
  return out;
}
