// Reverse-mode autodiff. Each op attaches a GradNode {parents, backward} to its output (see
// withGrad); backward() walks the graph in reverse topological order, calls each node's rule
// once with the summed upstream gradient, and accumulates into leaves' .grad.
import { isGradEnabled, Tensor, type BackwardFn } from './tensor.js';
import { keep, tidy } from './scope.js';
import { fmt, sameShape } from './shape.js';
import { add } from './ops/elementwise.js';
import { fill } from './ops/copy.js';

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
    const grads = new Map<number, Tensor>();
    grads.set(root.id, seed ?? fill(root.shape, 1));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t.id);
      if (!g) continue;
      grads.delete(t.id);
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
        if (!sameShape(gp.shape, p.shape)) throw new Error(`backward of ${t.node!.op}: gradient ${fmt(gp.shape)} for input ${k} of shape ${fmt(p.shape)}`);
        const prev = grads.get(p.id);
        grads.set(p.id, prev ? add(prev, gp) : gp);
      });
    }
  });
}

/** Clear gradients (dispose their buffers) of the given tensors. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = undefined;
  }
}
