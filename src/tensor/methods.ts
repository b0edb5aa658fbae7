// Chainable methods on Tensor (x.add(y).relu()), each delegating to the functional op.
// Declared by module augmentation so the op files stay the single source of each rule.
import { backward } from './autograd.js';
import * as cp from './ops/copy.js';
import * as ew from './ops/elementwise.js';
import * as mm from './ops/matmul.js';
import * as rd from './ops/reduce.js';
import * as vw from './ops/view.js';
import type { DType } from './dtype.js';
import type { Shape } from './shape.js';
import { Tensor } from './tensor.js';

type T = Tensor;
type TS = Tensor | number;

declare module './tensor.js' {
  interface Tensor {
    add(b: TS): T; sub(b: TS): T; mul(b: TS): T; div(b: TS): T; pow(b: TS): T;
    maximum(b: TS): T; minimum(b: TS): T;
    neg(): T; exp(): T; log(): T; sqrt(): T; rsqrt(): T; tanh(): T; sigmoid(): T; relu(): T; gelu(): T; silu(): T; abs(): T; square(): T;
    clamp(lo: number, hi: number): T;
    cast(dtype: DType): T;
    matmul(b: T): T;
    sum(axes?: number | number[], keepdims?: boolean): T;
    mean(axes?: number | number[], keepdims?: boolean): T;
    max(axes?: number | number[], keepdims?: boolean): T;
    min(axes?: number | number[], keepdims?: boolean): T;
    logsumexp(axes?: number | number[], keepdims?: boolean): T;
    reshape(shape: Shape): T; permute(perm: number[]): T; transpose(a?: number, b?: number): T;
    slice(axis: number, start: number, end: number): T; expand(shape: Shape): T;
    unsqueeze(axis: number): T; squeeze(axis: number): T; contiguous(): T;
    backward(seed?: T): void;
    detach(): T;
  }
}

const P = Tensor.prototype;
P.add = function (b) { return ew.add(this, b); };
P.sub = function (b) { return ew.sub(this, b); };
P.mul = function (b) { return ew.mul(this, b); };
P.div = function (b) { return ew.div(this, b); };
P.pow = function (b) { return ew.pow(this, b); };
P.maximum = function (b) { return ew.maximum(this, b); };
P.minimum = function (b) { return ew.minimum(this, b); };
P.neg = function () { return ew.neg(this); };
P.exp = function () { return ew.exp(this); };
P.log = function () { return ew.log(this); };
P.sqrt = function () { return ew.sqrt(this); };
P.rsqrt = function () { return ew.rsqrt(this); };
P.tanh = function () { return ew.tanh(this); };
P.sigmoid = function () { return ew.sigmoid(this); };
P.relu = function () { return ew.relu(this); };
P.gelu = function () { return ew.gelu(this); };
P.silu = function () { return ew.silu(this); };
P.abs = function () { return ew.abs(this); };
P.square = function () { return ew.square(this); };
P.clamp = function (lo, hi) { return ew.clamp(this, lo, hi); };
P.cast = function (d) { return ew.cast(this, d); };
P.matmul = function (b) { return mm.matmul(this, b); };
P.sum = function (a, k) { return rd.sum(this, a, k); };
P.mean = function (a, k) { return rd.mean(this, a, k); };
P.max = function (a, k) { return rd.max(this, a, k); };
P.min = function (a, k) { return rd.min(this, a, k); };
P.logsumexp = function (a, k) { return rd.logsumexp(this, a, k); };
P.reshape = function (s) { return vw.reshape(this, s); };
P.permute = function (p) { return vw.permute(this, p); };
P.transpose = function (a, b) { return vw.transpose(this, a, b); };
P.slice = function (ax, s, e) { return vw.slice(this, ax, s, e); };
P.expand = function (s) { return vw.expand(this, s); };
P.unsqueeze = function (a) { return vw.unsqueeze(this, a); };
P.squeeze = function (a) { return vw.squeeze(this, a); };
P.contiguous = function () { return cp.contiguous(this); };
P.backward = function (seed) { backward(this, seed); };
/** Same storage, no autograd history. */
P.detach = function () { return this.view(this.shape, this.strides, this.offset); };

// ---- neural-net ops (softmax, losses, norms, RoPE, integer indexing) ----
import * as ix from './ops/index-ops.js';
import * as ls from './ops/loss.js';
import * as nm from './ops/norm.js';
import * as rp from './ops/rope.js';
import * as sm from './ops/softmax.js';

declare module './tensor.js' {
  interface Tensor {
    softmax(axis?: number): T; logSoftmax(axis?: number): T;
    crossEntropy(targets: T, opts?: ls.CrossEntropyOpts): T; tokenLogProbs(targets: T): T;
    rmsNorm(weight: T, eps?: number): T; layerNorm(weight: T, bias?: T, eps?: number): T;
    rope(opts?: rp.RopeOpts): T;
    takeAlong(idx: T): T;
  }
}
P.softmax = function (a) { return sm.softmax(this, a); };
P.logSoftmax = function (a) { return sm.logSoftmax(this, a); };
P.crossEntropy = function (t, o) { return ls.crossEntropy(this, t, o); };
P.tokenLogProbs = function (t) { return ls.tokenLogProbs(this, t); };
P.rmsNorm = function (w, e) { return nm.rmsNorm(this, w, e); };
P.layerNorm = function (w, b, e) { return nm.layerNorm(this, w, b, e); };
P.rope = function (o) { return rp.rope(this, o); };
P.takeAlong = function (i) { return ix.takeAlong(this, i); };
