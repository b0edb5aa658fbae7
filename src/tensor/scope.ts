// Memory scopes. Every tensor created inside tidy() is disposed when it returns, except the
// returned tensors (handed to the enclosing scope) and tensors marked with keep(). This is
// what keeps a training loop's memory flat without a dispose() call per intermediate. When fn
// throws, every tensor it created is disposed before the error goes on (an op refused halfway
// must not leak the outputs it already allocated).
import type { Tensor } from './tensor.js';

const stack: Set<Tensor>[] = [];

export function track(t: Tensor): void {
  stack[stack.length - 1]?.add(t);
}

export function untrack(t: Tensor): void {
  for (const s of stack) s.delete(t);
}

/** Exempt a tensor from every scope: it lives until dispose() is called on it. */
export function keep<T extends Tensor>(t: T): T {
  untrack(t);
  t.kept = true;
  return t;
}

type Returned = Tensor | Tensor[] | Record<string, Tensor> | void | number | string | boolean | undefined;

function collect(r: unknown, into: Set<Tensor>): void {
  if (!r || typeof r !== 'object') return;
  if ((r as Tensor).isTensor === true) into.add(r as Tensor);
  else if (Array.isArray(r)) r.forEach((x) => collect(x, into));
  else if (Object.getPrototypeOf(r) === Object.prototype) Object.values(r).forEach((x) => collect(x, into));
}

function dropAll(scope: Set<Tensor>): void {
  for (const t of scope) if (!t.kept) t.dispose();
}

/** Run fn; dispose every tensor it created except those it returns (nested arrays/objects are searched). */
export function tidy<T extends Returned | unknown>(fn: () => T): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    dropAll(scope);
    throw e;
  } finally {
    stack.pop();
  }
  const out = new Set<Tensor>();
  collect(result, out);
  for (const t of scope) if (!out.has(t) && !t.kept) t.dispose();
  for (const t of out) track(t);
  return result;
}

/** Async variant: correct as long as no other tidy runs interleaved with it. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    dropAll(scope);
    throw e;
  } finally {
    const i = stack.lastIndexOf(scope);
    if (i >= 0) stack.splice(i, 1);
  }
  const out = new Set<Tensor>();
  collect(result, out);
  for (const t of scope) if (!out.has(t) && !t.kept) t.dispose();
  for (const t of out) track(t);
  return result;
}
