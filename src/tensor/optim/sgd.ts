// SGD with optional momentum / Nesterov and L2 weight decay (PyTorch semantics, dampening 0),
// one fused kernel per parameter.
import { optGroups, sgdKernel } from '../../kernels/optim.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { flatChunks } from '../binding.js';
import { flatPieceRanges } from '../pieces.js';
import { dispatch, grid } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { Optimizer, type OptimizerOpts, type ParamGroup } from './optimizer.js';

export interface SGDOpts extends OptimizerOpts {
  momentum?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  momentum: number;
  nesterov: boolean;

  constructor(params: Tensor[] | ParamGroup[], opts: SGDOpts) {
    super('SGD', params, opts, opts.momentum ? ['momentum'] : []);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && !this.momentum) throw new Error('SGD: nesterov needs a positive momentum');
  }

  protected update(p: Tensor, g: Tensor, bufs: Record<string, Tensor>, _step: number, lr: number, wd: number, scale: Tensor): void {
    const mom = bufs.momentum;
    // A parameter in several buffers (pieces.ts): a piece at a time.
    for (const r of flatPieceRanges('SGD', [p, g, ...(mom ? [mom] : [])]))
    for (const c of flatChunks(r.parts.map((q) => ({ ...q, bytesPer: 4 })), r.hi - r.lo)) {
      const u = new Uniforms(8).set(0, c.hi - c.lo).set(1, c.offsets[0]).set(2, c.offsets[1]).setF(3, lr).setF(4, this.momentum).setF(5, wd);
      u.set(6, this.nesterov ? 1 : 0).set(7, mom ? c.offsets[2] : 0);
      dispatch({
        ...sgdKernel(!!mom),
        buffers: [c.bindings[0], c.bindings[1], scale.buffer, ...(mom ? [c.bindings[2]] : [])],
        readOnly: [false, true, true, false],
        uniforms: u.u32,
        workgroups: grid(optGroups(c.hi - c.lo)),
      });
    }
  }
}
