// SGD with optional momentum / Nesterov and L2 weight decay (PyTorch semantics, dampening 0),
// one fused kernel per parameter.
import { optGroups, sgdKernel } from '../../kernels/optim.js';
import { Uniforms } from '../../kernels/uniforms.js';
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
    const u = new Uniforms(8).set(0, p.size).set(1, p.offset).set(2, g.offset).setF(3, lr).setF(4, this.momentum).setF(5, wd);
    u.set(6, this.nesterov ? 1 : 0).set(7, mom ? mom.offset : 0);
    dispatch({
      ...sgdKernel(!!mom),
      buffers: [p.buffer, g.buffer, scale.buffer, ...(mom ? [mom.buffer] : [])],
      readOnly: [false, true, true, false],
      uniforms: u.u32,
      workgroups: grid(optGroups(p.size)),
    });
  }
}
