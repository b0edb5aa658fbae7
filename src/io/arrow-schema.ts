// The Arrow schema pyarrow stores in a parquet file's key-value metadata ("ARROW:schema"):
// base64 of an IPC-encapsulated Schema message (0xFFFFFFFF, int32 length, flatbuffer Message,
// padding to 8). Parquet has no fixed-size list, so pyarrow writes fixed_size_list<float>[d]
// as a LIST and restores the type from this schema on read; writing it lets nla's parquet
// files carry the reference's `activation_vector` type exactly (NLA-REFERENCE-FORMAT.md §4).
// Only the types the reference's datasets use are encoded. Field order in the flatbuffer
// tables follows Schema.fbs / Message.fbs (a union takes two slots: its type, then its value).
export type ArrowType =
  | { kind: 'int64' }
  | { kind: 'utf8' }
  | { kind: 'float32' }
  | { kind: 'list'; item: ArrowField }
  | { kind: 'fixedSizeList'; size: number; item: ArrowField }
  | { kind: 'struct'; fields: ArrowField[] };
export interface ArrowField {
  name: string;
  type: ArrowType;
  nullable?: boolean;
}

// Union tags of Schema.fbs `Type` and Message.fbs `MessageHeader`.
const TYPE_TAG = { int64: 2, float32: 3, utf8: 5, list: 12, struct: 13, fixedSizeList: 16 } as const;
const HEADER_SCHEMA = 1;
const METADATA_V5 = 4;

type Slot = { slot: number } & ({ u8: number } | { i16: number } | { i32: number } | { bool: boolean } | { ref: Node });
type Node = { table: Slot[] } | { string: string } | { vector: Node[] };

/** Minimal front-to-back flatbuffer writer: a table's vtable precedes it, children follow it. */
class Builder {
  bytes: number[] = [];
  private align(n: number): void {
    while (this.bytes.length % n) this.bytes.push(0);
  }
  private u32At(pos: number, v: number): void {
    for (let i = 0; i < 4; i++) this.bytes[pos + i] = (v >>> (8 * i)) & 0xff;
  }
  private push(v: number, size: number): void {
    for (let i = 0; i < size; i++) this.bytes.push(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn));
  }
  /** Write node; returns its position (what a uoffset must reach). */
  write(node: Node): number {
    if ('string' in node) {
      this.align(4);
      const at = this.bytes.length, b = new TextEncoder().encode(node.string);
      this.push(b.length, 4);
      this.bytes.push(...b, 0);
      return at;
    }
    if ('vector' in node) {
      this.align(4);
      const at = this.bytes.length;
      this.push(node.vector.length, 4);
      const slots = node.vector.map(() => (this.push(0, 4), this.bytes.length - 4));
      node.vector.forEach((child, i) => this.u32At(slots[i], this.write(child) - slots[i]));
      return at;
    }
    // Table layout: soffset to the vtable, then fields (offsets and i32 on 4, i16 on 2, u8/bool on 1).
    const size = (s: Slot) => ('u8' in s || 'bool' in s ? 1 : 'i16' in s ? 2 : 4);
    const fields = [...node.table].sort((a, b) => size(b) - size(a));
    let off = 4;
    const place = new Map<Slot, number>();
    for (const f of fields) {
      off = Math.ceil(off / size(f)) * size(f);
      place.set(f, off);
      off += size(f);
    }
    const tableSize = Math.ceil(off / 4) * 4;
    const nSlots = Math.max(0, ...node.table.map((f) => f.slot + 1));
    this.align(2);
    const vt = this.bytes.length;
    this.push(4 + 2 * nSlots, 2);
    this.push(tableSize, 2);
    for (let s = 0; s < nSlots; s++) this.push(place.get(node.table.find((f) => f.slot === s)!) ?? 0, 2);
    this.align(4);
    const at = this.bytes.length;
    this.push(at - vt, 4); // soffset: vtable = table - soffset
    for (let i = 4; i < tableSize; i++) this.bytes.push(0);
    const refs: [number, Node][] = [];
    for (const f of fields) {
      const p = at + place.get(f)!;
      if ('u8' in f) this.bytes[p] = f.u8;
      else if ('bool' in f) this.bytes[p] = f.bool ? 1 : 0;
      else if ('i16' in f) (this.bytes[p] = f.i16 & 0xff), (this.bytes[p + 1] = (f.i16 >> 8) & 0xff);
      else if ('i32' in f) this.u32At(p, f.i32);
      else refs.push([p, f.ref]);
    }
    for (const [p, child] of refs) this.u32At(p, this.write(child) - p);
    return at;
  }
}

function typeNode(t: ArrowType): Node {
  switch (t.kind) {
    case 'int64':
      return { table: [{ slot: 0, i32: 64 }, { slot: 1, bool: true }] }; // Int { bitWidth, is_signed }
    case 'float32':
      return { table: [{ slot: 0, i16: 1 }] }; // FloatingPoint { precision: SINGLE }
    case 'fixedSizeList':
      return { table: [{ slot: 0, i32: t.size }] }; // FixedSizeList { listSize }
    default:
      return { table: [] }; // Utf8, List, Struct_: no fields
  }
}

function fieldNode(f: ArrowField): Node {
  const t = f.type;
  const children = t.kind === 'list' || t.kind === 'fixedSizeList' ? [t.item] : t.kind === 'struct' ? t.fields : [];
  return {
    table: [
      { slot: 0, ref: { string: f.name } },
      { slot: 1, bool: f.nullable ?? true },
      { slot: 2, u8: TYPE_TAG[t.kind] },
      { slot: 3, ref: typeNode(t) },
      { slot: 5, ref: { vector: children.map(fieldNode) } },
    ],
  };
}

/** The value of parquet's "ARROW:schema" key for these top-level fields. */
export function arrowSchemaMetadata(fields: ArrowField[]): string {
  const schema: Node = { table: [{ slot: 0, i16: 0 }, { slot: 1, ref: { vector: fields.map(fieldNode) } }] }; // endianness Little
  const message: Node = { table: [{ slot: 0, i16: METADATA_V5 }, { slot: 1, u8: HEADER_SCHEMA }, { slot: 2, ref: schema }] };
  const b = new Builder();
  b.bytes.push(0, 0, 0, 0); // root uoffset
  const root = b.write(message);
  b.bytes[0] = root & 0xff;
  b.bytes[1] = (root >> 8) & 0xff;
  b.bytes[2] = (root >> 16) & 0xff;
  b.bytes[3] = (root >>> 24) & 0xff;
  while (b.bytes.length % 8) b.bytes.push(0);
  const out = new Uint8Array(8 + b.bytes.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xffffffff, true);
  view.setInt32(4, b.bytes.length, true);
  out.set(b.bytes, 8);
  return Buffer.from(out).toString('base64');
}
