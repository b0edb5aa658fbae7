// Float64 CPU arrays: the oracle every GPU kernel is tested against. Deliberately plain
// loops, no cleverness: a reference should be obviously right.
import { broadcastShapes, contiguousStrides, numel, type Shape } from '../shape.js';

export class Nd {
  readonly strides: number[];
  constructor(public readonly shape: number[], public readonly data: Float64Array = new Float64Array(numel(shape))) {
    if (data.length !== numel(shape)) throw new Error(`Nd: ${data.length} values for shape [${shape}]`);
    this.strides = contiguousStrides(shape);
  }
  static from(shape: Shape, values: ArrayLike<number>): Nd {
    return new Nd([...shape], Float64Array.from(values));
  }
  static fill(shape: Shape, v: number): Nd {
    return new Nd([...shape], new Float64Array(numel(shape)).fill(v));
  }
  get size(): number {
    return this.data.length;
  }
  get rank(): number {
    return this.shape.length;
  }
  index(coords: readonly number[]): number {
    let o = 0;
    for (let i = 0; i < coords.length; i++) o += coords[i] * this.strides[i];
    return o;
  }
  get(...coords: number[]): number {
    return this.data[this.index(coords)];
  }
  map(f: (v: number, i: number) => number): Nd {
    return new Nd([...this.shape], this.data.map(f));
  }
  clone(): Nd {
    return new Nd([...this.shape], this.data.slice());
  }
  reshape(shape: number[]): Nd {
    return new Nd(shape, this.data);
  }
}

/** Coordinates of flat index i in `shape`. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

/** Elementwise map over broadcast inputs. */
export function broadcastMap(inputs: Nd[], f: (...v: number[]) => number): Nd {
  const shape = broadcastShapes('reference', ...inputs.map((x) => x.shape));
  const out = new Nd(shape);
  for (let i = 0; i < out.size; i++) {
    const c = unravel(i, shape);
    const vals = inputs.map((x) => {
      let o = 0;
      for (let k = 0; k < x.rank; k++) {
        const cc = c[shape.length - x.rank + k];
        o += (x.shape[k] === 1 ? 0 : cc) * x.strides[k];
      }
      return x.data[o];
    });
    out.data[i] = f(...vals);
  }
  return out;
}

/** Reduce over axes (sorted), keepdims shape. */
export function reduceAxes(x: Nd, axes: number[], init: number, f: (acc: number, v: number) => number, finish: (acc: number, n: number) => number = (a) => a): Nd {
  const shape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const acc = new Float64Array(numel(shape)).fill(init);
  const outStrides = contiguousStrides(shape);
  for (let i = 0; i < x.size; i++) {
    const c = unravel(i, x.shape);
    let o = 0;
    for (let k = 0; k < c.length; k++) if (!axes.includes(k)) o += c[k] * outStrides[k];
    acc[o] = f(acc[o], x.data[i]);
  }
  const n = numel(axes.map((a) => x.shape[a]));
  return new Nd(shape, acc.map((a) => finish(a, n)));
}
