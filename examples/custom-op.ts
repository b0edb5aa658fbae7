// A user-defined op: swish with a scalar beta parameter, y = x * sigmoid(beta * x), written as a
// WGSL forward kernel, a WGSL backward kernel and a float64 reference, then property-tested
// with checkOp (forward vs the reference, gradient vs finite differences of the reference).
// Run: node --import tsx examples/custom-op.ts
import { pathToFileURL } from 'node:url';
import * as T from '../src/tensor/index.js';
import { checkOp, randomNd } from '../src/testing/property.js';

export function defineSwish(): Promise<T.CustomOp> {
  return T.defineOp({
    name: 'swishBeta',
    inputs: 1,
    params: 1, // beta
    // One invocation per output element; in0 is x, param(0u) is beta.
    forward: {
      wgsl: `
fn kernel(i: u32) {
  let x = in0[i];
  out[i] = x / (1.0 + exp(-param(0u) * x));
}`,
    },
    // d/dx = s + beta * x * s * (1 - s), times the upstream gradient gy.
    backward: [
      {
        wgsl: `
fn kernel(i: u32) {
  let x = in0[i]; let b = param(0u);
  let s = 1.0 / (1.0 + exp(-b * x));
  out[i] = gy[i] * (s + b * x * s * (1.0 - s));
}`,
      },
    ],
    reference: ([x], [beta]) => x.map((v) => v / (1 + Math.exp(-beta * v))),
  });
}

async function main(): Promise<void> {
  const swish = await defineSwish();
  for (const shape of [[1], [7], [3, 5], [2, 1, 9]]) {
    await checkOp({ name: 'swishBeta', inputs: [randomNd(shape, shape.length, -3, 3)], gpu: ([x]) => swish(x, [1.7]), ref: (xs) => swish.reference(xs, [1.7]), grad: true });
  }
  // Used like any op, with autograd:
  const x = T.param(T.Tensor.from([-1, 0, 2], [3]));
  const loss = swish(x, [1.7]).sum();
  loss.backward();
  console.log('swishBeta([-1, 0, 2]) sum =', await loss.item(), 'grad =', Array.from(await x.grad!.data()));
  console.log('checkOp passed');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
