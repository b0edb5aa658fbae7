// Uniform packing. Kernels read parameters from `array<vec4<u32>, N>` through u(i)/uf(i)/ui(i)
// helpers, so one layout convention serves every kernel and shapes never enter the shader
// text (a new sequence length reuses the compiled pipeline).
export class Uniforms {
  readonly u32: Uint32Array;
  readonly f32: Float32Array;
  readonly i32: Int32Array;
  constructor(public readonly words: number) {
    const n = Math.max(4, Math.ceil(words / 4) * 4);
    this.u32 = new Uint32Array(n);
    this.f32 = new Float32Array(this.u32.buffer);
    this.i32 = new Int32Array(this.u32.buffer);
  }
  set(i: number, v: number): this {
    this.u32[i] = v >>> 0;
    return this;
  }
  setF(i: number, v: number): this {
    this.f32[i] = v;
    return this;
  }
  setI(i: number, v: number): this {
    this.i32[i] = v;
    return this;
  }
  setAll(i: number, vs: readonly number[]): this {
    vs.forEach((v, k) => (this.u32[i + k] = v >>> 0));
    return this;
  }
}

/** WGSL prelude declaring the uniform block and accessors for `words` words. */
export function uniformBlock(words: number): string {
  const vecs = Math.max(1, Math.ceil(words / 4));
  return `struct Params { v: array<vec4<u32>, ${vecs}> };
@group(0) @binding(0) var<uniform> P: Params;
fn u(i: u32) -> u32 { return P.v[i / 4u][i % 4u]; }
fn ui(i: u32) -> i32 { return bitcast<i32>(P.v[i / 4u][i % 4u]); }
fn uf(i: u32) -> f32 { return bitcast<f32>(P.v[i / 4u][i % 4u]); }
`;
}

/** Storage declaration for binding b. */
export function storage(b: number, name: string, type: string, write: boolean): string {
  if (type === 'bf16') throw new Error(`nla: this kernel (binding ${b}, "${name}") does not read bf16 tensors; only matmul, the embedding gather and the flat elementwise kernel (cast, and ops on dense outputs) take them: cast to f32 first`);
  return `@group(0) @binding(${b}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${type}>;\n`;
}

/** Linear invocation id over a 2-D dispatch of 1-D work (x is capped at 65535 groups). */
export const LINEAR_ID = `let gid = g.x + g.y * nw.x * WG;`;
export const MAIN_1D = (wg: number) =>
  `const WG: u32 = ${wg}u;\n@compute @workgroup_size(${wg})\nfn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {\n  ${LINEAR_ID}\n`;
