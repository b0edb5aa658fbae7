// Summarisation warm start. The AV learns h -> summary (loss on the summary tokens only);
// the AR learns summary -> h (normalised MSE). Same loop for both.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { SeededRng } from '../util/rng.js';
import type { Reconstructor } from './ar.js';
import type { Verbalizer } from './av.js';
import { makeOptimizer, type TrainSchedule } from './optim.js';

export interface SftOptions extends TrainSchedule {
  steps: number;
  batchSize: number;
  seed: number;
  logEvery?: number;
  onLog?: (m: { step: number; loss: number; lr: number }) => void;
}

export interface SftData {
  h: Float32Array; // [n, d]
  texts: string[]; // the summary of each row
}

async function loop(params: Tensor[], n: number, o: SftOptions, lossOf: (idx: number[]) => Tensor): Promise<number[]> {
  const opt = makeOptimizer(params, o);
  const r = new SeededRng(o.seed);
  const history: number[] = [];
  let order: number[] = [];
  for (let step = 0; step < o.steps; step++) {
    if (order.length < o.batchSize) order = order.concat(shuffle([...Array(n).keys()], r));
    const idx = order.splice(0, o.batchSize);
    const log = step % (o.logEvery ?? 10) === 0 || step === o.steps - 1;
    const lossT = T.tidy(() => {
      const loss = lossOf(idx);
      loss.backward();
      return log ? loss.detach() : undefined;
    });
    const lr = opt.step(step);
    if (lossT) {
      const loss = await lossT.item();
      lossT.dispose();
      history.push(loss);
      o.onLog?.({ step, loss, lr });
    }
  }
  await T.sync();
  opt.dispose();
  return history;
}

export function rowsOf(h: Float32Array, d: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * d);
  idx.forEach((i, k) => out.set(h.subarray(i * d, (i + 1) * d), k * d));
  return out;
}

export function trainArSft(ar: Reconstructor, data: SftData, o: SftOptions): Promise<number[]> {
  return loop(ar.params(), data.texts.length, o, (idx) => ar.loss(idx.map((i) => data.texts[i]), rowsOf(data.h, ar.d, idx)));
}

export function trainAvSft(av: Verbalizer, data: SftData, o: SftOptions): Promise<number[]> {
  return loop(av.params(), data.texts.length, o, (idx) => av.sftLoss(rowsOf(data.h, av.d, idx), idx.map((i) => data.texts[i])));
}

function shuffle<T>(a: T[], r: SeededRng): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
