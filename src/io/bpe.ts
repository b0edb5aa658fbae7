// The BPE merge loop shared by both tokenizers: repeatedly merge the adjacent pair with the
// best (lowest) priority, leftmost first on ties, until no pair can merge.
// llama2.c's run.c rescans every pair after every merge, which is O(n^2) over the whole
// prompt; a heap with lazy invalidation picks exactly the same pair each step (the leftmost
// best pair among the current ones) in O(n log n), which matters when encoding corpora.

export interface PairMerge {
  /** id of the merged symbol */
  id: number;
  /** lower merges first (HF: merge rank; llama2.c: -score) */
  priority: number;
}

export type PairLookup = (left: number, right: number) => PairMerge | undefined;

export function bpeMerge(symbols: readonly number[], lookup: PairLookup): number[] {
  const n = symbols.length;
  if (n < 2) return [...symbols];
  const sym = Int32Array.from(symbols);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Heap of candidate merges; an entry is stale once either side changed.
  const heap = new MinHeap();
  const push = (l: number): void => {
    const r = next[l]!;
    if (l < 0 || r < 0) return;
    const m = lookup(sym[l]!, sym[r]!);
    if (m) heap.push({ priority: m.priority, left: l, right: r, leftId: sym[l]!, rightId: sym[r]!, id: m.id });
  };
  for (let i = 0; i + 1 < n; i++) push(i);
  for (;;) {
    const e = heap.pop();
    if (!e) break;
    const { left: l, right: r } = e;
    if (!alive[l] || !alive[r] || next[l] !== r || sym[l] !== e.leftId || sym[r] !== e.rightId) continue;
    sym[l] = e.id;
    alive[r] = 0;
    next[l] = next[r]!;
    if (next[r]! >= 0) prev[next[r]!] = l;
    if (prev[l]! >= 0) push(prev[l]!);
    push(l);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
  return out;
}

interface Entry {
  priority: number;
  left: number;
  right: number;
  leftId: number;
  rightId: number;
  id: number;
}

/** Binary min-heap ordered by (priority, left position): leftmost wins ties, as in run.c. */
class MinHeap {
  private items: Entry[] = [];
  private less(a: Entry, b: Entry): boolean {
    return a.priority < b.priority || (a.priority === b.priority && a.left < b.left);
  }
  push(e: Entry): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Entry | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
