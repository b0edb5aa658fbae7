// One NLA held for the viewer, the token-baseline fit and metrics that go with it, and the
// queue that keeps requests from interleaving on the one GPU device. Used by `nla serve` (many
// requests) and `nla report` (one).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireComplete } from '../cli/nla-dir.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer.js';
import { loadNLA, type NLA, type NlaMeta } from '../nla/nla.js';
import { referencePairIn, type ReferencePair } from '../nla/reference.js';
import { readVectors, type Vectors } from '../nla/vectors.js';
import { findMetrics, readMetrics, type MetricsView } from './metrics.js';
import { findStore, fitBaselines, type BaselineFit } from './position-baselines.js';
import { checkText, explainDoc, explainVectors, InputError, summarize, type ViewData, type ViewInput, type ViewSettings } from './view-data.js';

/** The NLA directory is missing, incomplete or unreadable (HTTP 422 in the server). */
export class NlaLoadError extends Error {}

/**
 * What can be checked of an NLA directory without the GPU: its files, nla.json and tokenizer.
 * Lets a bad directory or a bad text be refused before the request waits in the queue.
 */
export function probeNla(dir: string): { meta: NlaMeta; tok: Tokenizer } | undefined {
  // A reference pair is checked field by field as it loads (reference.ts), on the GPU queue.
  if (referencePairIn(dir)) return undefined;
  try {
    requireComplete(dir);
    const file = path.join(dir, 'nla.json');
    const meta = JSON.parse(fs.readFileSync(file, 'utf8')) as NlaMeta;
    if (typeof meta.model?.config?.maxSeqLen !== 'number') throw new Error(`${file}: field "model.config.maxSeqLen" missing or not a number`);
    if (typeof meta.tokenizer !== 'string') throw new Error(`${file}: field "tokenizer" missing or not a string`);
    return { meta, tok: loadTokenizer(path.join(dir, meta.tokenizer)) };
  } catch (e) {
    throw new NlaLoadError((e as Error).message);
  }
}

interface Loaded {
  dir: string;
  nla: NLA;
  fit?: BaselineFit;
  baselineNote: string;
  metrics?: MetricsView;
}

export class ViewerSession {
  private loaded?: Loaded;
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /**
   * `store`/`metrics` override the lookup, `model` the studied model's path (nla.json's, or the
   * base model a reference pair only names), and `pair` a reference pair given as --av/--ar
   * (then `defaultDir` is its label), for `defaultDir` only (other directories use the lookup
   * and their own files).
   */
  constructor(readonly defaultDir: string, private readonly overrides: { store?: string; metrics?: string; model?: string; pair?: ReferencePair; maxTokens?: number } = {}) {}

  /** The directory whose NLA is loaded now, if any. */
  get loadedDir(): string | undefined {
    return this.loaded?.dir;
  }

  /** Requests ahead of one queued now. */
  get ahead(): number {
    return this.waiting;
  }

  /** Run `job` after every job queued before it; one at a time, in order. */
  enqueue<T>(job: () => Promise<T>): Promise<T> {
    this.waiting++;
    const run = this.tail.then(() => job()).finally(() => this.waiting--);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Metrics of a directory (by the lookup), without loading the NLA. */
  metricsFor(dir: string): MetricsView | undefined {
    const f = findMetrics(dir, dir === this.defaultDir ? this.overrides.metrics : undefined);
    return f ? readMetrics(f) : undefined;
  }

  /** The NLA of `dir`, loading it (and disposing of the one before) when it is another. Queue it. */
  async load(dir: string): Promise<Loaded> {
    if (this.loaded?.dir === dir) return this.loaded;
    const own = dir === this.defaultDir;
    const source = own && this.overrides.pair ? this.overrides.pair : dir;
    if (typeof source === 'string') probeNla(source);
    let nla: NLA;
    try {
      nla = await loadNLA(source);
    } catch (e) {
      throw new NlaLoadError((e as Error).message);
    }
    this.loaded?.nla.dispose();
    this.loaded = undefined;
    if (own && this.overrides.model) nla.meta.model.path = this.overrides.model;
    if (own && this.overrides.maxTokens) nla.meta.maxExplanationTokens = this.overrides.maxTokens;
    const explicitStore = own ? this.overrides.store : undefined;
    // A reference pair records no training store: only an explicit --store fits its baselines.
    const store = nla.meta.reference ? explicitStore : findStore(dir, nla.meta, explicitStore);
    let fit: BaselineFit | undefined, baselineNote: string;
    if (store) {
      try {
        fit = fitBaselines(store, nla.meta);
        baselineNote = `Token baselines fitted on the ${fit.train.ids.length} training rows (every split but eval) of ${store}.`;
      } catch (e) {
        // A store named by --store must work; one found by the lookup is a bonus.
        if (explicitStore) {
          nla.dispose();
          throw e;
        }
        baselineNote = `Token baselines not shown: the store found at ${store} did not load (${(e as Error).message}); pass --store DIR.`;
      }
    } else if (nla.meta.reference) {
      baselineNote = 'A reference pair records no activation store: pass --store DIR for the token baselines; the floor is the mean of the activations shown.';
    } else {
      baselineNote = `No activation store found for the token baselines (looked in nla.json's training records and ${path.join(dir, '..', 'activations')}; pass --store DIR); only the floor (the mean activation) is shown.`;
    }
    this.loaded = { dir, nla, fit, baselineNote, metrics: this.metricsFor(dir) };
    return this.loaded;
  }

  /** Check texts against the NLA's tokenizer and context without the GPU (throws InputError). */
  /** Check texts against the NLA's tokenizer and context; false when it cannot be probed without loading (a reference pair). */
  check(dir: string, texts: string[], labels?: string[]): boolean {
    const probed = this.loaded?.dir === dir ? { meta: this.loaded.nla.meta, tok: this.loaded.nla.tok } : probeNla(dir);
    if (!probed) return false;
    const { meta, tok } = probed;
    texts.forEach((t, i) => checkText(tok, meta.model.config.maxSeqLen, t, labels?.[i] ?? (texts.length > 1 ? `text ${i + 1}` : 'text')));
    return true;
  }

  /** Explain each text (call inside the queue). */
  async view(dir: string, inputs: ViewInput[], settings: ViewSettings, progress?: (done: number, total: number) => void): Promise<ViewData> {
    const l = await this.load(dir);
    let varianceNote: string | undefined;
    if (l.nla.lacksVariance || l.nla.meta.reference) {
      // A reference pair carries no Var: take it over every token of the texts shown.
      const hs: Float32Array[] = [];
      for (const t of inputs) {
        checkText(l.nla.tok, l.nla.meta.model.config.maxSeqLen, t.text);
        hs.push((await l.nla.activations(t.text)).h);
      }
      const all = new Float32Array(hs.reduce((a, h) => a + h.length, 0));
      hs.reduce((at, h) => (all.set(h, at), at + h.length), 0);
      varianceNote = l.nla.useEvaluatedVariance(all, `the ${all.length / l.nla.ar.d} activations at every token of ${inputs.length > 1 ? 'these texts' : 'this text'}`);
    }
    const docs = [];
    for (const t of inputs) docs.push(await explainDoc(l.nla, t, settings, l.fit, progress));
    return { format: 'nla-view/1', nla: summarize(l.nla, dir, varianceNote), settings, docs, baselines: { store: l.fit?.store, note: l.baselineNote }, metrics: l.metrics };
  }

  /** Vectors from a file, or an InputError naming what is wrong with it (no GPU: check before queueing). */
  static async readVectors(file: string, opts: { tensor?: string; field?: string }): Promise<Vectors> {
    try {
      return await readVectors(file, opts);
    } catch (e) {
      throw new InputError(`vectors: ${(e as Error).message}`);
    }
  }

  /** Explain vectors read from `file` (call inside the queue). */
  async viewVectors(dir: string, file: string, vecs: Vectors, settings: ViewSettings, progress?: (done: number, total: number) => void): Promise<ViewData> {
    const l = await this.load(dir);
    if (vecs.d !== l.nla.ar.d) throw new InputError(`vectors: ${file} holds vectors of ${vecs.d} values, the NLA reads d = ${l.nla.ar.d}`);
    const varianceNote = l.nla.useEvaluatedVariance(vecs.data, `the ${vecs.n} vector(s) of ${file}`);
    const vectors = await explainVectors(l.nla, vecs, settings, progress);
    return { format: 'nla-view/1', nla: summarize(l.nla, dir, varianceNote), settings, docs: [], vectors: { file, rows: vectors }, baselines: { note: 'Vectors have no token: no token baselines.' }, metrics: l.metrics };
  }

  dispose(): void {
    this.loaded?.nla.dispose();
    this.loaded = undefined;
  }
}
