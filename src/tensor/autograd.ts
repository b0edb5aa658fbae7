// Reverse-mode autodiff. Each op attaches a GradNode {parents, backward} to its output (see
// withGrad); backward() walks the graph in reverse topological order, calls each node's rule
// once with the summed upstream gradient, and accumulates into leaves' .grad.
import { isGradEnabled, PlacedGrad, Storage, Tensor, type BackwardFn } from './tensor.js';
import { isMulti } from './pieces.js';
import { bufferLimit } from './pool.js';
import { keep, tidy } from './scope.js';
import { contiguousStrides, fmt, sameShape } from './shape.js';
import { add } from './ops/elementwise.js';
import { copyInto, fill, zeros } from './ops/copy.js';

/** Attach a gradient rule to `out` if grad mode is on and any input needs a gradient. */
export function withGrad(op: string, out: Tensor, parents: Tensor[], backward: BackwardFn): Tensor {
  if (isGradEnabled() && parents.some((p) => p.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, parents, backward };
  }
  return out;
}

/** Mark a tensor as a trainable leaf. */
export function param<T extends Tensor>(t: T, name?: string): T {
  t.requiresGrad = true;
  if (name) t.name = name;
  return keep(t);
}

export function backward(root: Tensor, seed?: Tensor): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new Error(`backward: ${fmt(root.shape)} tensor does not require grad (no parameter reaches it, or it was made under noGrad)`);
  if (!seed && root.size !== 1) throw new Error(`backward: root has shape ${fmt(root.shape)}; pass a seed gradient for non-scalar roots`);
  // Topological order by DFS (iterative: deep graphs would overflow the stack).
  const order: Tensor[] = [];
  const seen = new Set<number>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    stack.push([t, true]);
    for (const p of t.node?.parents ?? []) if (p.requiresGrad && !seen.has(p.id)) stack.push([p, false]);
  }
  tidy(() => {
    // A tensor's gradient so far: dense, or pieces placed by slices (assembled when it is used).
    const grads = new Map<number, Tensor | PlacedGrad[]>();
    grads.set(root.id, seed ?? fill(root.shape, 1));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const partial = grads.get(t.id);
      if (!partial) continue;
      grads.delete(t.id);
      const g = Array.isArray(partial) ? assemble(partial, t.shape, isMulti(t)) : partial;
      if (!t.node) {
        // A leaf: accumulate into .grad, which outlives this scope.
        if (!sameShape(g.shape, t.shape)) throw new Error(`backward: gradient ${fmt(g.shape)} does not match leaf ${fmt(t.shape)}`);
        if (t.grad) {
          const sum = add(t.grad, g);
          t.grad.dispose();
          t.grad = keep(sum);
        } else t.grad = keep(g.isContiguous ? g.view(g.shape, g.strides, g.offset) : g.contiguous());
        continue;
      }
      for (const p of t.node.parents) p.assertAlive(`backward of ${t.node.op}`);
      const pg = t.node.backward(g);
      t.node.parents.forEach((p, k) => {
        const gp = pg[k];
        if (!gp || !p.requiresGrad) return;
        const prev = grads.get(p.id);
        if (gp instanceof PlacedGrad) {
          const { piece, axis, start } = gp;
          const fits = piece.rank === p.rank && piece.shape.every((d, j) => (j === axis ? start >= 0 && start + d <= p.shape[j] : d === p.shape[j]));
          if (!fits) throw new Error(`backward of ${t.node!.op}: gradient ${fmt(piece.shape)} placed at ${start} on axis ${axis} does not fit input ${k} of shape ${fmt(p.shape)}`);
          if (!prev) grads.set(p.id, [gp]);
          else if (Array.isArray(prev)) prev.push(gp);
          else grads.set(p.id, add(prev, assemble([gp], p.shape, isMulti(p))));
          return;
        }
        if (!sameShape(gp.shape, p.shape)) throw new Error(`backward of ${t.node!.op}: gradient ${fmt(gp.shape)} for input ${k} of shape ${fmt(p.shape)}`);
        grads.set(p.id, !prev ? gp : add(Array.isArray(prev) ? assemble(prev, p.shape, isMulti(p)) : prev, gp));
      });
    }
  });
}

/**
 * The dense gradient of shape `shape` that placed pieces add up to. Disjoint pieces along one
 * axis that cover it (the parts of a split) cost one copy each into a fresh buffer; gaps are
 * zero-filled first, and overlapping pieces are added into their region. `big`: the gradient of
 * a tensor in several buffers (pieces.ts), itself made in pieces; the row parts of such a tensor
 * (matmul per piece) become its pieces as they are, with no copy.
 */
function assemble(pieces: PlacedGrad[], shape: readonly number[], big = false): Tensor {
  const axis = pieces[0].axis;
  const spans = pieces.map((p) => [p.start, p.start + p.piece.shape[axis]] as const).sort((a, b) => a[0] - b[0]);
  const oneAxis = pieces.every((p) => p.axis === axis);
  const disjoint = oneAxis && spans.every(([s], i) => i === 0 || s >= spans[i - 1][1]);
  const covered = disjoint && spans.reduce((n, [s, e]) => n + e - s, 0) === shape[axis];
  if (covered) {
    // Already in place: every piece sits where it belongs in one dense buffer (attention writes
    // the gradients of a packed q|k|v side by side), so the whole is a view of it.
    const first = pieces[0].piece, strides = contiguousStrides(shape);
    const base = first.offset - pieces[0].start * strides[axis];
    const inPlace = base >= 0 && pieces.every(({ piece, start }) =>
      piece.storage === first.storage && piece.dtype === first.dtype && piece.offset === base + start * strides[axis] &&
      piece.strides.every((st, j) => piece.shape[j] === 1 || st === strides[j]));
    if (inPlace) return first.view([...shape], strides, base);
    if (big) {
      const own = asPieces(pieces, shape);
      if (own) return own;
    }
  }
  const out = covered ? Tensor.empty([...shape], 'f32', 'backward', big) : zeros([...shape], 'f32', big);
  for (const { piece, axis: a, start } of pieces) {
    const region = out.view(piece.shape, out.strides, out.offset + start * out.strides[a]);
    if (disjoint) copyInto(region, piece);
    else {
      const sum = add(region, piece);
      copyInto(region, sum);
      sum.dispose();
    }
    region.dispose();
  }
  return out;
}

/**
 * Row parts covering axis 0 of `shape` in order, each a dense f32 tensor from the start of its
 * own buffer (within the buffer limit): one tensor in several buffers made of them (pieces.ts).
 */
function asPieces(parts: PlacedGrad[], shape: readonly number[]): Tensor | undefined {
  const sorted = [...parts].sort((a, b) => a.start - b.start);
  const row = shape.slice(1).reduce((a, b) => a * b, 1);
  const limit = bufferLimit().bytes;
  const ok = sorted.every(({ piece, axis }) => axis === 0 && piece.dtype === 'f32' && piece.offset === 0 && piece.isContiguous && !isMulti(piece) && piece.storage.buffer.size <= limit);
  if (!ok || sorted.length < 2) return undefined;
  const ps = sorted.map(({ piece, start }) => ({ storage: piece.storage.retain(), first: start * row, end: (start + piece.shape[0]) * row }));
  return new Tensor([...shape], 'f32', Storage.multi(ps, row * shape[0] * 4, limit));
}

/** Clear gradients (dispose their buffers) of the given tensors. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = undefined;
  }
}
