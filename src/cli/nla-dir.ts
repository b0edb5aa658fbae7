// The NLA directory as the training commands build it, one stage at a time:
//   sft-ar  writes ar.safetensors + nla.json (+ the tokenizer)   -> a partial NLA
//   sft-av  adds av.safetensors                                  -> a complete NLA (loadNLA)
//   rl      keeps the warm-start AV as av-ref.safetensors and rewrites av/ar + nla.json
// nla.json is the same metadata loadNLA reads; each stage records its settings under
// "training"."<stage>". Whichever stage runs first creates nla.json from the store and M;
// later stages check that they train for the same model and layer.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';
import { parseJson } from '../io/json.js';
import { checkNlaMeta } from '../nla/meta-check.js';
import type { Tokenizer } from '../io/tokenizer.js';
import type { LoadedModel } from '../nn/load.js';
import type { Llama } from '../nn/llama.js';
import type { Weights } from '../nn/weights.js';
import { writeWeights } from '../nn/weights-save.js';
import { HELD_OUT_PARTS, heldOutRows, type HeldOutPart } from '../nla/dataset.js';
import { meanRow, normalizeRows, varianceNormalized } from '../nla/fve.js';
import type { NlaMeta } from '../nla/nla.js';
import { avPrompt, DEFAULT_PROMPTS } from '../nla/prompts.js';
import { referencePairIn, type ReferencePair } from '../nla/reference.js';
import { rowsOf } from '../nla/sft.js';
import { ActivationStore, ROW_SOURCES, rowSource, type RowMeta, type RowSource } from '../nla/store.js';

export const META = 'nla.json';
export const AV_FILE = 'av.safetensors';
export const AR_FILE = 'ar.safetensors';
export const AV_REF_FILE = 'av-ref.safetensors';

export function readMeta(dir: string): NlaMeta | undefined {
  const f = path.join(dir, META);
  if (!fs.existsSync(f)) return undefined;
  const meta = parseJson(fs.readFileSync(f, 'utf8'), f);
  checkNlaMeta(meta, f);
  return meta;
}

export function writeMeta(dir: string, meta: NlaMeta): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, META), [new TextEncoder().encode(JSON.stringify(meta, null, 1))]);
}

export async function saveWeights(file: string, w: Weights): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await writeWeights(file, w); // streamed: one parameter on the host at a time
}

/** Copy a file, replacing `to`, and leave the copy writable (model files are often read-only). */
export function copyWritable(from: string, to: string): void {
  if (path.resolve(from) === path.resolve(to)) return;
  fs.rmSync(to, { force: true });
  fs.copyFileSync(from, to);
  fs.chmodSync(to, 0o644);
}

/** A complete NLA directory (both halves trained), or an error saying which stage is missing. */
export function requireComplete(dir: string): void {
  if (!fs.existsSync(path.join(dir, META))) throw new Error(`${dir}: not an NLA directory (no ${META}, nor av/ and ar/ with nla_meta.yaml); build one with \`nla sft-ar\` and \`nla sft-av --out ${dir}\``);
  if (!fs.existsSync(path.join(dir, AR_FILE))) throw new Error(`${dir}: no ${AR_FILE} yet; run \`nla sft-ar --out ${dir}\` first`);
  if (!fs.existsSync(path.join(dir, AV_FILE))) throw new Error(`${dir}: no ${AV_FILE} yet; run \`nla sft-av --out ${dir}\` first`);
}

/** The --av/--ar options' help, for commands that read an NLA. */
export const PAIR_OPTIONS: [string, string][] = [
  ['--av <dir>', 'a reference NLA\'s AV directory (with nla_meta.yaml; use with --ar instead of --nla)'],
  ['--ar <dir>', 'a reference NLA\'s AR directory (with nla_meta.yaml and value_head.safetensors)'],
];

/**
 * The NLA a command reads: --nla DIR (nla's own directory, or a reference pair holding av/ and
 * ar/), or --av DIR --ar DIR (a reference pair given apart). Checks it is complete. `label` is
 * how messages name it.
 */
export function nlaSource(o: { str(k: string): string | undefined; need(k: string, hint?: string): string }): { source: string | ReferencePair; label: string; pair?: ReferencePair } {
  const av = o.str('av'), ar = o.str('ar');
  if (av !== undefined || ar !== undefined) {
    if (av === undefined || ar === undefined) throw new Error('--av and --ar go together (the two directories of a reference NLA)');
    if (o.str('nla') !== undefined) throw new Error('give either --nla or --av/--ar, not both');
    const pair = { av, ar };
    return { source: pair, label: `${av} + ${ar}`, pair };
  }
  const dir = o.need('nla', '<dir> (or --av <dir> --ar <dir>)');
  const pair = referencePairIn(dir);
  if (!pair) requireComplete(dir);
  return { source: dir, label: dir, pair };
}

/** Rows of the given split (or every row for "all"; "dev"/"test": the halves of "eval") from a store. */
export function storeRows(store: ActivationStore, split: string, want: RowSource | 'all' | 'auto' = 'all'): { h: Float32Array; meta: RowMeta[]; all: { h: Float32Array; meta: RowMeta[] }; source: RowSource | 'all' } {
  const all = store.readAll();
  const d = store.manifest.d;
  const inSplit = (HELD_OUT_PARTS as readonly string[]).includes(split)
    ? heldOutRows(all.meta, split as HeldOutPart)
    : all.meta.map((m, i) => (split === 'all' || m.split === split ? i : -1)).filter((i) => i >= 0);
  // auto: the known-answer stories when the split has some (the rows the demo reports), else every source.
  const source = want === 'auto' ? (inSplit.some((i) => rowSource(all.meta[i]) === 'known-answer') ? 'known-answer' : 'all') : want;
  const idx = source === 'all' ? inSplit : inSplit.filter((i) => rowSource(all.meta[i]) === source);
  if (inSplit.length && !idx.length) {
    const have = [...new Set(inSplit.map((i) => rowSource(all.meta[i])))].join(', ');
    throw new Error(`${store.dir}: no rows of source "${source}" in split "${split}" (its rows are of: ${have}; or use --source all)`);
  }
  if (!idx.length) {
    const have = [...new Set(all.meta.map((m) => m.split ?? '(none)'))].join(', ');
    throw new Error(`${store.dir}: no rows in split "${split}" (the store has: ${have}${have.includes('eval') ? ', whose eval rows halve into dev and test' : ''}; or use --split all)`);
  }
  return { h: rowsOf(all.h, d, idx), meta: idx.map((i) => all.meta[i]), all, source };
}

/** `--source`: one of ROW_SOURCES, "all", or "auto" (storeRows). */
export function parseSource(flag: string): RowSource | 'all' | 'auto' {
  if (flag !== 'all' && flag !== 'auto' && !(ROW_SOURCES as readonly string[]).includes(flag)) throw new Error(`--source: expected one of ${ROW_SOURCES.join(', ')}, all or auto, got "${flag}"`);
  return flag as RowSource | 'all' | 'auto';
}

/** Var and mean of normalised h over the store's training rows (every split but eval). */
export function trainingStats(all: { h: Float32Array; meta: RowMeta[] }, d: number): { variance: number; mean: number[] } {
  const idx = all.meta.map((m, i) => (m.split !== 'eval' ? i : -1)).filter((i) => i >= 0);
  const h = idx.length ? rowsOf(all.h, d, idx) : all.h;
  return { variance: varianceNormalized(h, d), mean: Array.from(meanRow(normalizeRows(h, d), d)) };
}

/** Open a store for training on M at a layer (checks width, layer and model identity). */
export function openStoreFor(dir: string, M: Llama, loaded: LoadedModel, layer?: number): ActivationStore {
  const store = ActivationStore.open(dir, { layer, d: M.cfg.dim });
  const sha = store.manifest.model.sha256;
  if (sha && sha !== loaded.sha256) throw new Error(`${dir}: activations were extracted from model "${store.manifest.model.name}" (sha256 ${sha.slice(0, 12)}…), not from ${loaded.source} (${loaded.sha256.slice(0, 12)}…)`);
  return store;
}

export interface StageInput {
  dir: string;
  stage: 'sft-ar' | 'sft-av' | 'rl';
  loaded: LoadedModel;
  M: Llama;
  tok: Tokenizer;
  tokenizerPath: string;
  store: ActivationStore;
  stats: { variance: number; mean: number[] };
  /** Set by sft-av (the AV's injection scale); sft-ar keeps an existing value or uses q75. */
  alpha?: number;
  maxExplanationTokens?: number;
}

/**
 * The metadata after a training stage: the existing nla.json (checked to be for the same
 * model and layer) or a fresh one, with this stage's values. Copies the tokenizer in.
 */
export function stageMeta(s: StageInput): NlaMeta {
  const old = readMeta(s.dir);
  const layer = s.store.manifest.layer;
  if (old) {
    if (old.model?.sha256 !== s.loaded.sha256) throw new Error(`${path.join(s.dir, META)}: this NLA is for model ${old.model?.name} (sha256 ${String(old.model?.sha256).slice(0, 12)}…), not ${s.loaded.source}; use another --out`);
    if (old.layer !== layer) throw new Error(`${path.join(s.dir, META)}: this NLA is for layer ${old.layer}, the store holds layer ${layer}; use another --out`);
  }
  const prompts = old?.prompts ?? DEFAULT_PROMPTS;
  const tokName = path.basename(s.tokenizerPath).endsWith('.json') ? 'tokenizer.json' : 'tokenizer.bin';
  const tokDest = path.join(s.dir, old?.tokenizer ?? tokName);
  fs.mkdirSync(s.dir, { recursive: true });
  if (!fs.existsSync(tokDest)) copyWritable(s.tokenizerPath, tokDest);
  return {
    format: 'nla/1',
    model: { name: s.loaded.name, path: path.resolve(s.loaded.source), sha256: s.loaded.sha256, config: s.M.cfg },
    tokenizer: path.basename(tokDest),
    layer,
    alpha: s.alpha ?? old?.alpha ?? s.store.manifest.norms.q75,
    variance: s.stats.variance,
    mean: s.stats.mean,
    prompts,
    placeholderId: avPrompt(s.tok, prompts).placeholderId,
    maxExplanationTokens: s.maxExplanationTokens ?? old?.maxExplanationTokens ?? 64,
    created: old?.created ?? new Date().toISOString(),
    training: { ...(old?.training ?? {}) },
  };
}

export const CHAIN_HELP = `
The directory chain (each command reads what the one before wrote):
  nla extract --model M --layer 3 --out runs/x/activations         activation store (manifest.json + shards)
  nla sft-ar  --store runs/x/activations --model M --out runs/x/nla  ar.safetensors + nla.json (a partial NLA)
  nla sft-av  --store runs/x/activations --model M --out runs/x/nla  + av.safetensors (a complete NLA)
  nla rl      --nla runs/x/nla --store runs/x/activations            updates av/ar (warm-start AV kept as av-ref.safetensors)
  nla eval    --nla runs/x/nla --store runs/x/activations --split dev   FVE greedy/sampled/shuffled + baselines (tune on dev, report test)
  nla explain --nla runs/x/nla --text "Once upon a time"             explanations per token, scored by the AR
M = stories260K.bin (looked up in $NLA_MODELS, the cache or ../shared/models) or any llama2.c / HF Llama model.`;
