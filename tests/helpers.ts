// Shared test fixtures: where the real stories260K model lives (never committed).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '../src/io/model-files.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Directory holding stories260K.bin and tok512.bin, or undefined (tests then skip with a reason). */
export function sharedModels(): string | undefined {
  // The lookup users get (env, ../shared/models, the cache that scripts/setup.sh seeds).
  const cands = [process.env.NLA_MODELS, path.join(root, '..', 'shared', 'models'), path.join(defaultCacheDir(), 'models')].filter((x): x is string => !!x);
  return cands.find((d) => ['stories260K.bin', 'tok512.bin', 'README.md'].every((f) => fs.existsSync(path.join(d, f))));
}

export const SKIP_NO_MODEL = sharedModels() ? false : 'stories260K not found (set NLA_MODELS or provide ../shared/models)';

/** llama2.c's published greedy output for "Once upon a time" (200 steps), from the model README. */
export function publishedOutput(): string {
  const readme = fs.readFileSync(path.join(sharedModels()!, 'README.md'), 'utf8');
  return readme.split('```')[1].trim();
}
