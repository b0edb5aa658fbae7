// Shared plumbing of the subcommands: options from flags or a --config JSON file (flags win;
// unknown keys are errors), typed option reading with messages that name the flag, the
// studied model, metrics JSONL files and checkpoint flags.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Tokenizer } from '../io/tokenizer.js';
import { loadCheckpoint, type Checkpoint } from '../nn/checkpoint.js';
import type { Llama } from '../nn/llama.js';
import { loadModel, loadTokenizerFor, resolveTokenizerPath, type LoadedModel } from '../nn/load.js';
import { WEIGHT_DTYPES, type WeightDType } from '../nn/stream-load.js';
import type { CheckpointSpec } from '../nla/train-state.js';
import { Progress } from '../util/progress.js';

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Add `--config FILE.json` to a command. */
export function withConfig(cmd: Command): Command {
  return cmd.option('--config <file>', 'read options from a JSON object whose keys are option names ("steps", "batch-size" or "batchSize"); flags given on the command line win');
}

/** Typed access to a command's options after merging its --config file. */
export class Opts {
  private constructor(readonly cmd: Command, private readonly o: Record<string, unknown>) {}

  /** The command's options: flags, then keys of --config FILE where no flag was given, then defaults. */
  static of(cmd: Command): Opts {
    const o: Record<string, unknown> = { ...cmd.opts() };
    const file = o.config as string | undefined;
    if (file !== undefined) {
      if (!fs.existsSync(file)) throw new Error(`--config ${file}: file not found`);
      let raw: unknown;
      try {
        raw = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: expected a JSON object of options, e.g. {"steps": 100}`);
      // Keys: the attribute ("batchSize") or the flag ("batch-size"); a "no-x" flag's key
      // holds the flag's sense ({"no-sampled": true} = {"sampled": false}).
      const known = new Map<string, { attr: string; negate: boolean }>();
      for (const opt of cmd.options) {
        const attr = opt.attributeName();
        if (attr === 'config') continue;
        known.set(attr, { attr, negate: false });
        if (opt.long) known.set(opt.long.replace(/^--/, ''), { attr, negate: opt.negate && !!opt.long.startsWith('--no-') });
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        const hit = known.get(k);
        if (!hit) {
          const names = [...new Set(cmd.options.map((x) => x.long?.replace(/^--/, '')).filter((x) => x && x !== 'config'))].join(', ');
          throw new Error(`${file}: unknown key "${k}" (options of \`nla ${cmd.name()}\`: ${names})`);
        }
        if (cmd.getOptionValueSource(hit.attr) === 'cli') continue;
        o[hit.attr] = hit.negate && typeof v === 'boolean' ? !v : v;
      }
    }
    return new Opts(cmd, o);
  }

  private where(key: string): string {
    return `--${kebab(key)}`;
  }

  raw(key: string): unknown {
    return this.o[key];
  }

  has(key: string): boolean {
    return this.o[key] !== undefined && this.o[key] !== null;
  }

  str(key: string): string | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`${this.where(key)}: expected a string, got ${JSON.stringify(v)}`);
    return String(v);
  }

  /** A required string option. */
  need(key: string, hint = ''): string {
    const v = this.str(key);
    if (v === undefined || v === '') throw new Error(`\`nla ${this.cmd.name()}\` needs ${this.where(key)}${hint ? ' ' + hint : ''} (or "${kebab(key)}" in --config); see \`nla ${this.cmd.name()} --help\``);
    return v;
  }

  num(key: string, o: { int?: boolean; min?: number; max?: number } = {}): number {
    const v = this.o[key];
    if (v === undefined || v === null) this.need(key);
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    const what = `${this.where(key)} ${JSON.stringify(v)}`;
    if (!Number.isFinite(n)) throw new Error(`${what}: expected a number`);
    if (o.int && !Number.isInteger(n)) throw new Error(`${what}: expected an integer`);
    if (o.min !== undefined && n < o.min) throw new Error(`${what}: must be at least ${o.min}`);
    if (o.max !== undefined && n > o.max) throw new Error(`${what}: must be at most ${o.max}`);
    return n;
  }

  int(key: string, min?: number, max?: number): number {
    return this.num(key, { int: true, min, max });
  }

  optNum(key: string, o: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
    return this.has(key) ? this.num(key, o) : undefined;
  }

  bool(key: string): boolean {
    const v = this.o[key];
    if (v === undefined || v === null || v === false || v === 'false') return false;
    if (v === true || v === 'true') return true;
    throw new Error(`${this.where(key)}: expected true or false, got ${JSON.stringify(v)}`);
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T {
    const v = this.need(key);
    if (!choices.includes(v as T)) throw new Error(`${this.where(key)} ${JSON.stringify(v)}: expected one of ${choices.join(', ')}`);
    return v as T;
  }

  /** The merged options as plain JSON (recorded in nla.json's training section). */
  plain(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.o)) if (v !== undefined) out[k] = v;
    return out;
  }
}

export interface Studied {
  loaded: LoadedModel;
  M: Llama;
  tok: Tokenizer;
  tokenizerPath: string;
}

/** Load the studied model M and its tokenizer; NLAs need a Llama-family model. */
export async function loadStudied(model: string, tokenizer?: string, o: { llamaOnly?: boolean; dtype?: WeightDType } = {}): Promise<Studied> {
  const loaded = await loadModel(model, { dtype: o.dtype });
  if (o.llamaOnly && loaded.model.cfg.arch !== 'llama') throw new Error(`${loaded.source}: the NLA trainer supports Llama-family models (this is ${loaded.model.cfg.arch})`);
  const tokenizerPath = resolveTokenizerPath(model, tokenizer);
  return { loaded, M: loaded.model as Llama, tok: loadTokenizerFor(model, tokenizer), tokenizerPath };
}

/** `--weights-dtype`: the GPU dtype of a loaded model's matrices (inference commands). */
export const WEIGHTS_DTYPE_HELP = 'GPU dtype of the model\'s matrices: f32, f16, bf16, or auto = a bf16/f16 checkpoint\'s own dtype when the GPU engine has it, else f32 (norms and biases stay f32; products accumulate in f32)';
export function weightsDtype(o: Opts): WeightDType {
  return o.has('weightsDtype') ? o.oneOf('weightsDtype', WEIGHT_DTYPES) : 'auto';
}

/** Layer K must name a block of M (K = output of block K, HF hidden_states[K+1]). */
export function checkLayer(layer: number, nLayers: number, name: string): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) {
    throw new Error(`--layer ${layer} out of range: ${name} has ${nLayers} blocks, so the layer must be 0..${nLayers - 1} (layer K = the output of block K)`);
  }
}

/** A JSONL metrics file: one object per line, each with its stage. */
export class Metrics {
  private constructor(readonly file: string | undefined) {}

  /**
   * Open for a stage. A fresh run drops the stage's old lines; a resumed run keeps the lines
   * before the checkpoint's step (so steps redone after the checkpoint are not duplicated).
   */
  static open(file: string | undefined, stage: string, resumeStep?: number): Metrics {
    if (!file) return new Metrics(undefined);
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file, 'utf8');
      const lines = text.split('\n');
      // A last line without its newline was cut off by a killed run: drop it.
      if (!text.endsWith('\n')) lines.pop();
      const keep = lines.filter((line) => {
        if (!line.trim()) return false;
        try {
          const m = JSON.parse(line) as { stage?: string; step?: number };
          if (m.stage !== stage && !m.stage?.startsWith(stage + '-')) return true;
          return resumeStep !== undefined && typeof m.step === 'number' && m.step < resumeStep;
        } catch {
          return true;
        }
      });
      fs.writeFileSync(file, keep.map((l) => l + '\n').join(''));
    }
    return new Metrics(file);
  }

  write(stage: string, m: object): void {
    if (this.file) fs.appendFileSync(this.file, JSON.stringify({ stage, ...m }) + '\n');
  }
}

export const CHECKPOINT_HELP = 'A checkpoint holds the weights, optimizer state, step, RNG state and data order;\na resumed run (--resume) continues exactly as an uninterrupted one with the same settings.';

/** Word-wrap text to a width, indenting every line. */
export function wrap(text: string, width = 94, indent = '  '): string {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) (out.push(line), (line = ''));
    line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out.map((l) => indent + l).join('\n');
}

/** --checkpoint FILE, --checkpoint-every N, --resume [FILE]. */
export function withCheckpointFlags(cmd: Command, defaultEvery: number): Command {
  return cmd
    .option('--checkpoint <file>', 'checkpoint file (default: <out>/checkpoints/<command>.ckpt)')
    .option('--checkpoint-every <n>', 'write the checkpoint every N steps and after the last (0: only after the last)', String(defaultEvery))
    .option('--resume [file]', 'continue from a checkpoint (default file: the --checkpoint path); same data and settings as the run that wrote it');
}

export function checkpointOptions(o: Opts, defaultFile: string): { checkpoint: CheckpointSpec; resume?: Checkpoint } {
  const file = o.str('checkpoint') ?? defaultFile;
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const checkpoint = { file, every: o.int('checkpointEvery', 0) };
  const v = o.raw('resume');
  if (v === undefined || v === null || v === false || v === 'false') return { checkpoint };
  if (typeof v !== 'string' && v !== true) throw new Error(`--resume: expected a file name or true, got ${JSON.stringify(v)}`);
  const resumeFile = v === true || v === 'true' ? file : v;
  if (!fs.existsSync(resumeFile)) throw new Error(`--resume: checkpoint ${resumeFile} not found (was the run started with checkpoints? see --checkpoint-every)`);
  return { checkpoint, resume: loadCheckpoint(resumeFile) };
}

/** A progress bar (stderr, with ETA) whose final line is printed once, by done(). */
export function progressBar(label: string, total: number): { update(done: number, extra?: string): void; done(): void } {
  const bar = new Progress(label, total);
  let lastExtra = '';
  return {
    update(done, extra = '') {
      lastExtra = extra;
      if (done < total) bar.update(done, extra);
    },
    done() {
      bar.done(lastExtra);
    },
  };
}
