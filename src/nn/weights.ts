// A model's parameters as a flat map keyed by Hugging Face names, so loading and saving
// safetensors is a direct mapping and a reader of the forward pass can look names up.
import type { HostTensor } from '../io/host-tensor.js';
import { param } from '../tensor/autograd.js';
import { exactSizes } from '../tensor/pool.js';
import { Tensor } from '../tensor/tensor.js';
import { fmt } from '../tensor/shape.js';

export class Weights {
  readonly map = new Map<string, Tensor>();

  get(name: string): Tensor {
    const t = this.map.get(name);
    if (!t) throw new Error(`weights: no parameter named "${name}"`);
    return t;
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  /** Upload host tensors as trainable, scope-exempt parameters. */
  static fromHost(host: Map<string, HostTensor>): Weights {
    const w = new Weights();
    for (const [name, h] of host) {
      if (h.dtype === 'i32') throw new Error(`weights: "${name}" is an integer tensor`);
      w.map.set(name, param(exactSizes(() => Tensor.from(h.data as Float32Array, h.shape, 'f32')), name));
    }
    return w;
  }
  /** Check names and shapes against what the architecture expects; name the first problem. */
  validate(expected: Map<string, number[]>, source: string): void {
    for (const [name, shape] of expected) {
      const t = this.map.get(name);
      if (!t) throw new Error(`${source}: missing tensor "${name}" (expected shape ${fmt(shape)})`);
      if (fmt(t.shape) !== fmt(shape)) throw new Error(`${source}: tensor "${name}" has shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
    }
    for (const name of this.map.keys()) if (!expected.has(name)) throw new Error(`${source}: unexpected tensor "${name}"`);
  }
  async toHost(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, t] of this.map) out.set(name, { dtype: 'f32', shape: [...t.shape], data: (await t.data()) as Float32Array });
    return out;
  }
  /** Copy another model's values into fresh parameters (e.g. AV = a copy of M). */
  async clone(): Promise<Weights> {
    return this.copy();
  }
  /**
   * Fresh f32 parameters holding the values of those tensors `keep` accepts (all by default), in
   * this map's order. One tensor at a time through the host: never a host copy of the model.
   */
  async copy(keep: (name: string) => boolean = () => true): Promise<Weights> {
    const w = new Weights();
    for (const [name, t] of this.map) {
      if (!keep(name)) continue;
      const data = (await t.data()) as Float32Array;
      w.map.set(name, param(exactSizes(() => Tensor.from(data, [...t.shape], 'f32')), name));
    }
    return w;
  }
  params(): Tensor[] {
    return [...this.map.values()];
  }
  setTrainable(on: boolean): void {
    for (const t of this.map.values()) t.requiresGrad = on;
  }
  dispose(): void {
    for (const t of this.map.values()) {
      t.grad?.dispose();
      t.dispose();
    }
    this.map.clear();
  }
}
