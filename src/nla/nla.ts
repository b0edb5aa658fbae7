// An NLA on disk and in memory: the AV and AR weights plus the metadata that fixes how they
// are used (prompts, placeholder, alpha, layer, Var, the studied model's identity). Everything
// is read from the metadata at use, never hard-coded.
import { parseJson } from '../io/json.js';
import { checkNlaMeta } from './meta-check.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LlamaConfig } from '../io/config.js';
import { listSafetensors } from '../io/safetensors-stream.js';
import { uploadSpans } from '../nn/stream-load.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { Llama } from '../nn/llama.js';
import { loadModel, resolveModelPath } from '../nn/load.js';
import { Weights } from '../nn/weights.js';
import { writeWeights } from '../nn/weights-save.js';
import { initGpu } from '../tensor/device.js';
import * as T from '../tensor/index.js';
import { Reconstructor } from './ar.js';
import { Verbalizer, type Explained } from './av.js';
import { extractActivations } from './extract.js';
import { meanRow, normalizeRows, varianceNormalized } from './fve.js';
import { normalizedMseHost } from './loss.js';
import type { PromptSpec } from './prompts.js';
import { loadReferenceNLA, referencePairIn, type ReferenceInfo, type ReferencePair } from './reference.js';
import { quoteLogProb } from './quote-confidence.js';

export interface NlaMeta {
  format: 'nla/1';
  model: { name: string; path: string; sha256: string; config: LlamaConfig };
  tokenizer: string; // file name inside the NLA directory
  layer: number;
  alpha: number;
  /** Var of normalised h over the training activations (FVE's denominator). */
  variance: number;
  /** Mean of normalised h (the mean predictor). */
  mean: number[];
  prompts: PromptSpec;
  placeholderId: number;
  maxExplanationTokens: number;
  created: string;
  training?: Record<string, unknown>;
  /** Set when the NLA was opened from a reference pair (av/ + ar/ with nla_meta.yaml); not saved in nla.json. */
  reference?: ReferenceInfo;
}

export interface TokenExplanation {
  position: number;
  token: string;
  /** quoteP: the AV's own probability of the explanation's opening quotation (quote-confidence.ts). */
  explanations: { text: string; mse: number; fve: number; quoteP?: number }[];
}

export class NLA {
  constructor(
    readonly meta: NlaMeta,
    readonly av: Verbalizer,
    readonly ar: Reconstructor,
    readonly tok: Tokenizer,
    /** M itself (to read activations of new text); loaded lazily. */
    private m?: Llama,
  ) {}

  async save(dir: string): Promise<void> {
    fs.mkdirSync(dir, { recursive: true });
    // One parameter at a time (no host copy of a whole model: 2 GB each at 0.5B).
    await writeWeights(path.join(dir, 'av.safetensors'), this.av.model.w);
    await writeWeights(path.join(dir, 'ar.safetensors'), this.ar.model.w);
    const { reference: _, ...meta } = this.meta; // where a reference pair came from is not part of nla.json
    writeFileAtomic(path.join(dir, 'nla.json'), [new TextEncoder().encode(JSON.stringify(meta, null, 1))]);
  }

  /** Token ids of a text as M reads it: with BOS when the tokenizer has one (Qwen2's has none). */
  textIds(text: string): number[] {
    return this.tok.encode(text, { bos: this.tok.bosId >= 0 });
  }

  /** Layer-K activations of `text` at every token (host [n*d]) and the tokens. */
  async activations(text: string): Promise<{ ids: number[]; h: Float32Array }> {
    const ids = this.textIds(text);
    const h = await extractActivations(await this.studied(), this.meta.layer, [{ ids, positions: ids.map((_, i) => i), meta: [] }]);
    return { ids, h };
  }

  private async studied(): Promise<Llama> {
    if (!this.m) {
      if (!this.meta.model.path) throw new Error(`this NLA (${this.meta.reference?.av ?? this.meta.model.name}) records no local path for the model it studies (base_checkpoint ${this.meta.model.name}); pass --model <dir> (loadNLA's model option) to read activations of text`);
      const loaded = await loadModel(resolveModelPath(this.meta.model.path));
      if (this.meta.model.sha256 && loaded.sha256 !== this.meta.model.sha256) throw new Error(`${loaded.source}: this is not the model the NLA was trained on (sha256 ${loaded.sha256.slice(0, 12)}…, NLA metadata says ${this.meta.model.sha256.slice(0, 12)}…)`);
      this.m = loaded.model as Llama;
    }
    return this.m;
  }

  /** Reconstruction of h from an explanation ([d], host). */
  async reconstruct(explanation: string): Promise<Float32Array> {
    return this.ar.predictHost([explanation]);
  }

  /** How well an explanation reconstructs h: normalised MSE and FVE. */
  async score(h: Float32Array, explanation: string): Promise<{ mse: number; fve: number }> {
    const pred = await this.reconstruct(explanation);
    const mse = this.mse(pred, h);
    return { mse, fve: 1 - mse / this.meta.variance };
  }

  /**
   * Normalised MSE of a prediction row against a target row: both scaled to norm s before the
   * mean squared difference. s = sqrt(d) (so the value is 2(1 - cos)) unless a reference AR's
   * sidecar says otherwise (its mse_scale), which multiplies it by s^2/d.
   */
  mse(pred: ArrayLike<number>, h: ArrayLike<number>, row = 0, hrow = row): number {
    const d = this.ar.d, s = this.meta.reference?.mseScale;
    return normalizedMseHost(pred, h, d, row, hrow) * (s === undefined ? 1 : (s * s) / d);
  }

  /** True when FVE has no denominator: a reference pair's sidecars carry no Var (nla.json always does). */
  get lacksVariance(): boolean {
    return !Number.isFinite(this.meta.variance);
  }

  /**
   * Var and mean of normalised h rows ([n*d], n >= 2) on this NLA's MSE scale (see mse): FVE's
   * denominator and the mean predictor, for data this NLA is evaluated on when it carries none.
   */
  statsOf(h: Float32Array): { variance: number; mean: number[] } {
    const d = this.ar.d, n = h.length / d, s = this.meta.reference?.mseScale;
    if (!Number.isInteger(n) || n < 2) throw new Error(`statsOf: Var needs at least 2 activation rows of ${d} values, got ${h.length / d}`);
    return { variance: varianceNormalized(h, d) * (s === undefined ? 1 : (s * s) / d), mean: Array.from(meanRow(normalizeRows(h, d), d)) };
  }

  /**
   * For an NLA without Var (a reference pair): take Var and the mean from the evaluated rows h
   * and say so; `what` names them ("the 12 activations of this text"). Returns the note to show,
   * or undefined when the NLA has its own Var or h has fewer than 2 rows (FVE stays NaN).
   */
  useEvaluatedVariance(h: Float32Array, what: string): string | undefined {
    if (!this.lacksVariance && !this.evaluatedVariance) return undefined;
    this.evaluatedVariance = true;
    if (h.length / this.ar.d < 2) {
      this.meta.variance = NaN;
      this.meta.mean = [];
      return `no FVE: the sidecars carry no Var and ${what} is a single row (Var needs 2 or more)`;
    }
    const st = this.statsOf(h);
    this.meta.variance = st.variance;
    this.meta.mean = st.mean;
    return `Var ${st.variance.toFixed(3)} computed over ${what}: the reference sidecars carry no Var, so FVE here is relative to this data's own spread`;
  }

  /** Set once Var comes from evaluated data (it is then recomputed for each new evaluation). */
  private evaluatedVariance = false;

  /**
   * Explain h rows: `samples` per row, reranked best-first by the AR. `quoteP`: the AV's own
   * probability of the explanation's opening quotation (quote-confidence.ts), where it has one.
   */
  async explainActivations(h: Float32Array, opts: { samples?: number; temperature?: number; seed?: number } = {}): Promise<{ text: string; mse: number; fve: number; quoteP?: number }[][]> {
    const k = opts.samples ?? 1, d = this.ar.d, n = h.length / d;
    const outs: Explained[] = await this.av.explain(h, { samples: k, temperature: opts.temperature ?? (k > 1 ? 1 : 0), maxTokens: this.meta.maxExplanationTokens, seed: opts.seed });
    const preds = await this.ar.predictHost(outs.map((o) => o.explanation ?? ''));
    return [...Array(n).keys()].map((a) =>
      [...Array(k).keys()]
        .map((j) => {
          const i = a * k + j, o = outs[i];
          const mse = o.explanation === undefined ? 2 : this.mse(preds, h, i, a);
          const lq = o.explanation === undefined ? undefined : quoteLogProb(this.av, o.tokens, o.logprobs);
          return { text: o.explanation ?? `(unparseable) ${o.text}`, mse, fve: 1 - mse / this.meta.variance, ...(lq === undefined ? {} : { quoteP: Math.exp(lq) }) };
        })
        .sort((x, y) => x.mse - y.mse),
    );
  }

  /** Explain the activations of `text` at the given token positions (default: all). */
  async explain(text: string, positions?: number[], opts: { samples?: number; temperature?: number; seed?: number } = {}): Promise<TokenExplanation[]> {
    const { ids, h } = await this.activations(text);
    const d = this.ar.d;
    const pos = (positions ?? ids.map((_, i) => i)).map((p) => {
      if (!Number.isInteger(p) || p < 0 || p >= ids.length) throw new Error(`explain: position ${p} out of range (the text has ${ids.length} tokens, BOS at 0)`);
      return p;
    });
    const rows = new Float32Array(pos.length * d);
    pos.forEach((p, k) => rows.set(h.subarray(p * d, (p + 1) * d), k * d));
    const ex = await this.explainActivations(rows, opts);
    return pos.map((p, k) => ({ position: p, token: this.tok.pieces([ids[p]])[0], explanations: ex[k] }));
  }

  dispose(): void {
    this.av.model.w.dispose();
    this.ar.model.w.dispose();
    this.m?.w.dispose();
  }
}

/**
 * An NLA's weights file (f32, as NLA.save writes it) streamed to the GPU a chunk at a time: the
 * host never holds the decoded model (2 GB for a 0.5B AV). Parameters in file order, which is
 * the order NLA.save writes them in.
 */
export async function streamWeights(file: string): Promise<Weights> {
  const w = new Weights();
  for (const [k, t] of await uploadSpans(listSafetensors(file), { dtype: 'f32' })) w.map.set(k, t);
  return w;
}

/**
 * Open an NLA: nla's own directory (nla.json), a reference pair (a directory holding av/ and
 * ar/ with nla_meta.yaml sidecars), or the two reference directories given apart. `model` is
 * the studied model's path (needed to explain text; a reference pair names only its Hub id).
 */
export async function loadNLA(dir: string | ReferencePair, opts: { model?: string } = {}): Promise<NLA> {
  const pair = typeof dir === 'string' ? referencePairIn(dir) : dir;
  if (pair) {
    const r = await loadReferenceNLA(pair, opts);
    return new NLA(r.meta, r.av, r.ar, r.tok);
  }
  dir = dir as string;
  await initGpu();
  const metaFile = path.join(dir, 'nla.json');
  if (!fs.existsSync(metaFile)) throw new Error(`${dir}: not an NLA directory (no nla.json, nor av/ and ar/ with nla_meta.yaml)`);
  const meta = parseJson(fs.readFileSync(metaFile, 'utf8'), metaFile);
  checkNlaMeta(meta, metaFile);
  const tok = loadTokenizer(path.join(dir, meta.tokenizer));
  const av = new Verbalizer(new Llama(meta.model.config, await streamWeights(path.join(dir, 'av.safetensors'))), tok, meta.prompts, meta.alpha);
  if (av.prompt.placeholderId !== meta.placeholderId) throw new Error(`${metaFile}: placeholderId ${meta.placeholderId} does not match the prompt's placeholder token ${av.prompt.placeholderId}`);
  const ar = Reconstructor.fromWeights(meta.model.config, await streamWeights(path.join(dir, 'ar.safetensors')), meta.layer, tok, meta.prompts);
  const nla = new NLA(meta, av, ar, tok);
  if (opts.model) meta.model.path = opts.model;
  return nla;
}
