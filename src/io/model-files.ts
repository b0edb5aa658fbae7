// Finding model files offline, and fetching the two tiny llama2.c models when online.
// Lookup order (first hit wins):
//   1. the name itself, if it is a path to an existing file
//   2. $NLA_MODELS/<name>
//   3. <cache>/models/<name>, cache = $NLA_CACHE | $XDG_CACHE_HOME/nla | ~/.cache/nla
//      (scripts/setup.sh seeds this from ../shared/models; downloadTinyllama writes here)
//   4. ../shared/models/<name> relative to the working directory (the project's data beside it)
// Downloads are verified against pinned sha256 hashes before they become visible.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AtomicFile, copyFileAtomic } from './atomic-write.js';

export interface FindOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NLA_CACHE) return env.NLA_CACHE;
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'nla');
  return path.join(os.homedir(), '.cache', 'nla');
}

/** Every place findModelFile looks, in order. */
export function modelSearchPaths(name: string, opts: FindOptions = {}): string[] {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const base = path.basename(name);
  const out = [path.resolve(cwd, name)];
  if (env.NLA_MODELS) out.push(path.join(env.NLA_MODELS, base));
  out.push(path.join(defaultCacheDir(env), 'models', base));
  out.push(path.resolve(cwd, '..', 'shared', 'models', base));
  return out;
}

export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
}

/** Locate a model file or directory (e.g. "stories260K.bin") or throw an error saying how to provide it. */
export function findModelFile(name: string, opts: FindOptions = {}): string {
  const tried = modelSearchPaths(name, opts);
  // Directories count too: a Hugging Face model is a folder (config.json + safetensors).
  for (const p of tried) if (fs.existsSync(p)) return p;
  const base = path.basename(name);
  const dl = TINYLLAMAS[base] ? `, or download it: downloadTinyllama('${base}') from src/io (needs network)` : '';
  throw new ModelNotFoundError(
    `model file "${name}" not found. Looked in:\n  ${tried.join('\n  ')}\n` +
      `Fix: pass an explicit path, set NLA_MODELS=/dir/containing/${base}, ` +
      `or run scripts/setup.sh to seed the cache from ../shared/models${dl}.`,
  );
}

/** Karpathy's stories260K and its tokenizer: what the tests, the demo and the examples run on. */
export const TINY_MODEL_FILES: readonly string[] = ['stories260K.bin', 'tok512.bin'];

/** What to do about missing model files: names them and the three ways to provide them. */
export function missingModelsMessage(names: readonly string[], opts: FindOptions = {}): string {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const online = names.every((n) => TINYLLAMAS[n]);
  return (
    `model files not found: ${names.join(', ')}. Provide them in one of three ways:\n` +
    `  1. NLA_MODELS=/dir/containing/them (${env.NLA_MODELS ? `now ${env.NLA_MODELS}` : 'not set'})\n` +
    `  2. the cache ${path.join(defaultCacheDir(env), 'models')} (NLA_CACHE or XDG_CACHE_HOME move it)` +
    (online ? `; with a network, scripts/setup.sh downloads them there (sha256-checked, from karpathy/tinyllamas)\n` : '\n') +
    `  3. ../shared/models beside the project (${path.resolve(cwd, '..', 'shared', 'models')})\n` +
    `Looked in:\n  ${names.flatMap((n) => modelSearchPaths(n, opts)).join('\n  ')}`
  );
}

/**
 * Make model files present (scripts/setup.sh): found by findModelFile; copied into the cache
 * when only ../shared/models has them (so runs from any directory find them offline); else
 * downloaded (sha256-checked). Throws ModelNotFoundError with missingModelsMessage and the
 * download errors when some cannot be provided. Returns name -> path.
 */
export async function ensureModelFiles(
  names: readonly string[] = TINY_MODEL_FILES,
  opts: FindOptions & { baseUrl?: string } = {},
): Promise<Map<string, string>> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const cache = defaultCacheDir(env);
  const found = new Map<string, string>();
  const failures: string[] = [];
  for (const name of names) {
    let p: string | undefined;
    try {
      p = findModelFile(name, { env, cwd });
    } catch (e) {
      if (!(e instanceof ModelNotFoundError)) throw e;
    }
    if (p && p === path.resolve(cwd, '..', 'shared', 'models', path.basename(name))) {
      const target = path.join(cache, 'models', path.basename(name));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      // Atomic, so an interrupted copy never sits where the lookup would find it.
      copyFileAtomic(p, target);
      p = target;
    }
    if (!p && TINYLLAMAS[path.basename(name)]) {
      try {
        p = await downloadTinyllama(path.basename(name), cache, { baseUrl: opts.baseUrl });
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    if (p) found.set(name, p);
  }
  const missing = names.filter((n) => !found.has(n));
  if (missing.length) {
    throw new ModelNotFoundError(missingModelsMessage(missing, { env, cwd }) + (failures.length ? `\nDownload failed:\n  ${failures.join('\n  ')}` : ''));
  }
  return found;
}

/** Files we know in karpathy/tinyllamas: path inside the repo and pinned sha256. */
export const TINYLLAMAS: Record<string, { remote: string; sha256: string }> = {
  'stories260K.bin': { remote: 'stories260K/stories260K.bin', sha256: 'b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696' },
  'tok512.bin': { remote: 'stories260K/tok512.bin', sha256: '037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312' },
};

export interface DownloadOptions {
  /** default https://huggingface.co/karpathy/tinyllamas/resolve/main (tests point it at a local server) */
  baseUrl?: string;
  /** expected sha256, required for names not in TINYLLAMAS */
  sha256?: string;
  /** remote path under baseUrl, default from TINYLLAMAS or the name itself */
  remote?: string;
}

/**
 * Download `name` into <cacheDir>/models/, verifying its sha256. The file appears under its
 * final name only after the hash matched (temp file + rename), so a failed or interrupted
 * download never leaves a corrupt model where findModelFile would pick it up.
 */
export async function downloadTinyllama(name: string, cacheDir = defaultCacheDir(), opts: DownloadOptions = {}): Promise<string> {
  const known = TINYLLAMAS[name];
  const sha256 = opts.sha256 ?? known?.sha256;
  if (!sha256) throw new Error(`downloadTinyllama: no known sha256 for "${name}"; pass opts.sha256 (known: ${Object.keys(TINYLLAMAS).join(', ')})`);
  const base = (opts.baseUrl ?? 'https://huggingface.co/karpathy/tinyllamas/resolve/main').replace(/\/+$/, '');
  const url = `${base}/${opts.remote ?? known?.remote ?? name}`;
  const dir = path.join(cacheDir, 'models');
  fs.mkdirSync(dir, { recursive: true });
  const target = path.join(dir, path.basename(name));
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`downloadTinyllama: cannot fetch ${url} (${(e as Error).message}); offline? Put ${name} in $NLA_MODELS or ${dir} by hand`);
  }
  if (!res.ok || !res.body) throw new Error(`downloadTinyllama: GET ${url} failed: HTTP ${res.status}`);
  const hash = createHash('sha256');
  // Written beside the target and renamed over it only once the hash matched.
  const file = new AtomicFile(target);
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      file.write(value);
    }
    const got = hash.digest('hex');
    if (got !== sha256.toLowerCase()) throw new Error(`downloadTinyllama: ${url}: sha256 mismatch, expected ${sha256} but got ${got}; file discarded`);
    file.commit();
  } catch (e) {
    file.abort();
    throw e;
  }
  return target;
}
