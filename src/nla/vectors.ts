// Vectors from elsewhere for `nla explain --vectors`: SAE feature directions, steering vectors,
// activations saved by other tools. Read from .npy (NumPy's format: little-endian f2/f4/f8, C
// order, shape (d,) or (n, d)), .safetensors (one named tensor, [d] or [n, d]), .jsonl (one
// JSON array per line, or an object holding it under a field) and .parquet (the reference's
// activation datasets: the activation_vector column). Errors name the file and what is wrong.
import * as fs from 'node:fs';
import { decodeF16 } from '../io/half.js';
import { readSafetensors } from '../io/safetensors.js';
import { readReferenceDataset } from './reference-dataset.js';

export interface Vectors {
  /** Row-major [n * d]. */
  data: Float32Array;
  n: number;
  d: number;
  /** Where each row came from (file:line for JSONL, the doc_id for parquet), for output. */
  labels: string[];
}

function rows(file: string, data: Float32Array, shape: number[], what: string): Vectors {
  if (shape.length !== 1 && shape.length !== 2) throw new Error(`${file}: ${what} has shape (${shape.join(', ')}); expected (d,) or (n, d)`);
  const [n, d] = shape.length === 1 ? [1, shape[0]] : shape;
  return { data, n, d, labels: [...Array(n).keys()].map((i) => `${what}[${i}]`) };
}

/** NumPy .npy, format versions 1-3. */
export function readNpy(file: string): Vectors {
  const b = fs.readFileSync(file);
  if (b.length < 10 || b.readUInt8(0) !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file (no \\x93NUMPY magic)`);
  const major = b.readUInt8(6);
  const [hlen, start] = major === 1 ? [b.readUInt16LE(8), 10] : [b.readUInt32LE(8), 12];
  const header = b.toString(major === 3 ? 'utf8' : 'latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new Error(`${file}: .npy header ${JSON.stringify(header.trim())} lacks descr, fortran_order or shape`);
  if (fortran === 'True') throw new Error(`${file}: fortran_order is True; save the array in C order (np.ascontiguousarray)`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, x) => a * x, 1);
  const body = b.subarray(start + hlen);
  const width = { '<f2': 2, '<f4': 4, '<f8': 8 }[descr];
  if (!width) throw new Error(`${file}: descr ${JSON.stringify(descr)} is not supported (little-endian float: <f2, <f4, <f8)`);
  if (body.length !== count * width) throw new Error(`${file}: shape (${shape.join(', ')}) ${descr} needs ${count * width} bytes, the file holds ${body.length}`);
  const copy = new Uint8Array(body).buffer; // aligned
  const data = descr === '<f4' ? new Float32Array(copy) : descr === '<f8' ? Float32Array.from(new Float64Array(copy)) : decodeF16(new Uint16Array(copy));
  return rows(file, data, shape, 'array');
}

export function readSafetensorsVectors(file: string, tensor?: string): Vectors {
  const all = readSafetensors(file);
  const names = [...all.keys()];
  const name = tensor ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined) throw new Error(`${file}: holds ${names.length} tensors (${names.join(', ')}); name one with --tensor`);
  const t = all.get(name);
  if (!t) throw new Error(`${file}: no tensor "${name}" (it has: ${names.join(', ')})`);
  if (t.dtype === 'i32') throw new Error(`${file}: tensor "${name}" is an integer tensor`);
  return rows(file, t.data as Float32Array, t.shape, name);
}

export function readJsonlVectors(file: string, field = 'vector'): Vectors {
  const out: number[][] = [], labels: string[] = [];
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(v)) v = (v as Record<string, unknown> | null)?.[field];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new Error(`${where}: expected an array of numbers, or an object with one in "${field}"`);
    if (out.length && v.length !== out[0].length) throw new Error(`${where}: ${v.length} values, line of the first vector has ${out[0].length}`);
    out.push(v as number[]);
    labels.push(where);
  });
  if (!out.length) throw new Error(`${file}: no vectors`);
  return { data: Float32Array.from(out.flat()), n: out.length, d: out[0].length, labels };
}

/** Read vectors by file type (extension). */
export async function readVectors(file: string, opts: { tensor?: string; field?: string } = {}): Promise<Vectors> {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  if (file.endsWith('.npy')) return readNpy(file);
  if (file.endsWith('.safetensors')) return readSafetensorsVectors(file, opts.tensor);
  if (file.endsWith('.jsonl') || file.endsWith('.json')) return readJsonlVectors(file, opts.field);
  if (file.endsWith('.parquet')) {
    const r = await readReferenceDataset(file);
    const n = r.rows.length;
    return { data: r.vectors, n, d: r.d, labels: r.rows.map((row, i) => (typeof row.doc_id === 'string' ? `${row.doc_id}@${row.n_raw_tokens ?? ''}` : `row ${i}`)) };
  }
  throw new Error(`${file}: unknown vector file type (expected .npy, .safetensors, .jsonl or .parquet)`);
}
