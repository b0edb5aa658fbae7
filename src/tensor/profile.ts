// GPU time per kernel from timestamp queries. While profiling, the runtime gives every dispatch
// its own compute pass bracketed by two timestamps (so small kernels read high: a pass costs
// more than a dispatch inside one) and calls the hooks below around each submit.
//
// Started by startProfiling(), or by NLA_PROFILE=1 at the first dispatch; with the variable set,
// a per-kernel table goes to stderr when the process exits.
import { gpu } from './device.js';
import { flush } from './runtime.js';

/** What runtime.ts calls while profiling. */
export interface ProfilerHooks {
  /** Timestamp writes for the pass of the next dispatch, under `key`. */
  slot(key: string): GPUComputePassTimestampWrites;
  /** All query slots taken: the runtime submits before the next dispatch. */
  full(): boolean;
  /** Before a submit: resolve this batch's queries into a buffer to read back. */
  resolve(enc: GPUCommandEncoder): void;
  /** After the submit: read that buffer back (asynchronously) into the totals. */
  collect(): void;
}

class Profiler implements ProfilerHooks {
  private readonly cap = 1024;
  private readonly qs: GPUQuerySet;
  private keys: string[] = [];
  private resolveBuf: GPUBuffer;
  readonly totals = new Map<string, { ns: number; count: number }>();
  private readonly pendingReads = new Set<Promise<void>>();
  private staged: { buf: GPUBuffer; keys: string[] } | undefined;
  constructor(private readonly device: GPUDevice) {
    this.qs = device.createQuerySet({ type: 'timestamp', count: 2 * this.cap });
    this.resolveBuf = device.createBuffer({ size: 16 * this.cap, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  }
  slot(key: string): GPUComputePassTimestampWrites {
    const i = this.keys.push(key) - 1;
    return { querySet: this.qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }
  full(): boolean {
    return this.keys.length >= this.cap;
  }
  resolve(enc: GPUCommandEncoder): void {
    if (!this.keys.length) return;
    const n = this.keys.length;
    enc.resolveQuerySet(this.qs, 0, 2 * n, this.resolveBuf, 0);
    const buf = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(this.resolveBuf, 0, buf, 0, 16 * n);
    this.staged = { buf, keys: this.keys };
    this.keys = [];
  }
  collect(): void {
    const st = this.staged;
    this.staged = undefined;
    if (!st) return;
    const read = st.buf.mapAsync(GPUMapMode.READ).then(() => {
      const t = new BigUint64Array(st.buf.getMappedRange());
      st.keys.forEach((k, i) => {
        const e = this.totals.get(k) ?? { ns: 0, count: 0 };
        e.ns += Number(t[2 * i + 1] - t[2 * i]);
        e.count++;
        this.totals.set(k, e);
      });
      st.buf.unmap();
      st.buf.destroy();
      this.pendingReads.delete(read);
    });
    this.pendingReads.add(read);
  }
  /** Batches submitted but not yet read back. */
  inFlight(): number {
    return this.pendingReads.size;
  }
  async settle(): Promise<void> {
    await Promise.all([...this.pendingReads]);
  }
}

let profiler: Profiler | undefined;
let envChecked = false;

/** The active profiler, if any; the first call starts one when NLA_PROFILE=1 (runtime.ts calls this per dispatch and submit). */
export function activeProfiler(): ProfilerHooks | undefined {
  if (!envChecked) {
    envChecked = true;
    if (profileFromEnv()) startFromEnv();
  }
  return profiler;
}

const profileFromEnv = () => !!process.env.NLA_PROFILE && process.env.NLA_PROFILE !== '0';

function startFromEnv(): void {
  if (!gpu().hasTimestamps) {
    console.error('nla: NLA_PROFILE is set but this adapter has no timestamp queries; not profiling');
    return;
  }
  startProfiling();
  // 'exit' handlers must be synchronous, so batches whose timestamps are still being read back
  // then are left out (and counted); profileReport() awaits them and is exact.
  let printed = false;
  process.on('beforeExit', () => {
    if (printed) return;
    printed = true;
    // Work still recorded but not submitted is submitted and timed too.
    void drain().then(printTable, printTable);
  });
  process.on('exit', () => {
    if (!printed) printTable();
  });
}

/** Start collecting GPU time per kernel (needs the timestamp-query feature). */
export function startProfiling(): void {
  if (!gpu().hasTimestamps) throw new Error('nla: profiling needs the timestamp-query feature, which this adapter lacks');
  profiler ??= new Profiler(gpu().device);
}

/** Totals per key, merged by `name(key)`. */
function merged<E extends { ms: number; count: number }>(name: (key: string) => string, make: (key: string) => E): E[] {
  const out = new Map<string, E>();
  for (const [k, v] of profiler?.totals ?? []) {
    const n = name(k);
    const e = out.get(n) ?? make(k);
    e.ms += v.ns / 1e6;
    e.count += v.count;
    out.set(n, e);
  }
  return [...out.values()].sort((a, b) => b.ms - a.ms);
}

/** A kernel's name without its dispatch note: the cache key up to its first "|"-separated field pair. */
const kernelName = (key: string) => {
  const at = key.indexOf('|@');
  return (at < 0 ? key : key.slice(0, at)).split('|').slice(0, 2).join('|');
};
const noteOf = (key: string) => {
  const at = key.indexOf('|@');
  return at < 0 ? '' : key.slice(at + 2);
};

/** Submit what is recorded and wait until every timestamp so far is read back. */
async function drain(): Promise<void> {
  if (!profiler) return;
  flush();
  await new Promise((r) => setTimeout(r, 0));
  await gpu().device.queue.onSubmittedWorkDone();
  await profiler.settle();
}

/** GPU milliseconds per kernel family (the cache key up to its first "|"-separated field pair), largest first. */
export async function profileReport(): Promise<{ kernel: string; ms: number; count: number }[]> {
  await drain();
  return merged(kernelName, (k) => ({ kernel: kernelName(k), ms: 0, count: 0 }));
}

/** GPU milliseconds per kernel and dispatch note (e.g. each matmul shape and layout apart), largest first. */
export async function profileDetail(): Promise<{ kernel: string; note: string; ms: number; count: number }[]> {
  await drain();
  return merged((k) => kernelName(k) + '\0' + noteOf(k), (k) => ({ kernel: kernelName(k), note: noteOf(k), ms: 0, count: 0 }));
}

function printTable(): void {
  const rows = merged(kernelName, (k) => ({ kernel: kernelName(k), ms: 0, count: 0 }));
  const total = rows.reduce((a, r) => a + r.ms, 0);
  const lost = profiler?.inFlight() ?? 0;
  const lines = [`nla: GPU time per kernel (NLA_PROFILE; each dispatch in its own timed pass): ${total.toFixed(1)} ms in ${rows.reduce((a, r) => a + r.count, 0)} dispatches${lost ? `, ${lost} batch(es) still being read back not counted` : ''}`];
  for (const r of rows.slice(0, 30)) {
    lines.push(`  ${r.kernel.padEnd(40)} ${r.ms.toFixed(2).padStart(10)} ms ${String(r.count).padStart(7)} ${((100 * r.ms) / (total || 1)).toFixed(1).padStart(5)}%`);
  }
  if (rows.length > 30) lines.push(`  ... ${rows.length - 30} more kernels`);
  process.stderr.write(lines.join('\n') + '\n');
}
