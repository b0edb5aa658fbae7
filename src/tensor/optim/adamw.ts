// AdamW with PyTorch's semantics (decoupled weight decay, bias correction), one fused kernel
// per parameter: m, v and the parameter are rewritten in place in a single dispatch.
import { adamwKernel, optGroups } from '../../kernels/optim.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { flatChunks } from '../binding.js';
import { flatPieceRanges } from '../pieces.js';
import { dispatch, grid } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { Optimizer, type OptimizerOpts, type ParamGroup } from './optimizer.js';

export interface AdamWOpts extends OptimizerOpts {
  betas?: [number, number];
  eps?: number;
}

export class AdamW extends Optimizer {
  beta1: number;
  beta2: number;
  eps: number;

  /** Defaults as torch.optim.AdamW: betas (0.9, 0.999), eps 1e-8, weightDecay 0.01. */
  constructor(params: Tensor[] | ParamGroup[], opts: AdamWOpts) {
    super('AdamW', params, { weightDecay: 0.01, ...opts }, ['m', 'v']);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
  }

  protected update(p: Tensor, g: Tensor, bufs: Record<string, Tensor>, step: number, lr: number, wd: number, scale: Tensor): void {
    const bc1 = 1 - this.beta1 ** step, bc2 = 1 - this.beta2 ** step;
    // A parameter beyond one binding (a big embedding) is updated a range at a time; one in
    // several buffers (pieces.ts), a piece at a time (its gradient and moments are in pieces too).
    for (const r of flatPieceRanges('AdamW', [p, g, bufs.m, bufs.v]))
    for (const c of flatChunks(r.parts.map((q) => ({ ...q, bytesPer: 4 })), r.hi - r.lo)) {
      if (c.offsets[2] !== c.offsets[3]) throw new Error('AdamW: moment buffers m and v must share a layout');
      const u = new Uniforms(12).set(0, c.hi - c.lo).set(1, c.offsets[0]).set(2, c.offsets[1]).setF(3, this.beta1).setF(4, this.beta2).setF(5, this.eps);
      u.setF(6, 1 - lr * wd).setF(7, lr / bc1).setF(8, Math.sqrt(bc2)).set(9, c.offsets[2]);
      dispatch({
        ...adamwKernel(),
        buffers: [...c.bindings, scale.buffer],
        readOnly: [false, true, false, false, true],
        uniforms: u.u32,
        workgroups: grid(optGroups(c.hi - c.lo)),
      });
    }
  }
}
