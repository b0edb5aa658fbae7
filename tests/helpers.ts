// Shared test fixtures: the real stories260K model and its tokenizer (never committed), found by
// the lookup users get (findModelFile: path, NLA_MODELS, the cache, ../shared/models).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findModelFile, missingModelsMessage, ModelNotFoundError, TINY_MODEL_FILES } from '../src/io/model-files.js';

// Anchored at the project root, so ../shared/models means the directory beside this checkout
// whatever directory the tests are started from.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export type ModelName = 'stories260K.bin' | 'tok512.bin';

function lookup(name: string): string | undefined {
  try {
    return findModelFile(name, { cwd: root });
  } catch (e) {
    if (e instanceof ModelNotFoundError) return undefined;
    throw e;
  }
}

const missing = TINY_MODEL_FILES.filter((n) => !lookup(n));

/**
 * The `skip` option of every test that needs the models: false (run it) unless they are missing
 * AND NLA_ALLOW_MISSING_MODELS=1. Otherwise such a test runs and fails in modelFile() with how to
 * provide them; tests/skip-summary.ts counts the skips at the end of `npm test`.
 */
export const SKIP_NO_MODEL: false | string =
  missing.length > 0 && process.env.NLA_ALLOW_MISSING_MODELS === '1' ? `needs ${missing.join(', ')} (not found; NLA_ALLOW_MISSING_MODELS=1)` : false;

/** Path of a model file; throws the message that says how to provide it when it is missing. */
export function modelFile(name: ModelName): string {
  const p = lookup(name);
  if (p) return p;
  throw new ModelNotFoundError(
    `${missingModelsMessage(missing.length ? missing : [name], { cwd: root })}\n` +
      'Tests that need them fail; to skip those tests instead, set NLA_ALLOW_MISSING_MODELS=1.',
  );
}

/** Directory of stories260K.bin (older call sites; prefer modelFile). Throws like modelFile. */
export function sharedModels(): string {
  return path.dirname(modelFile('stories260K.bin'));
}

/** Fail (with the message) unless both model files are present. */
export function requireModels(): void {
  for (const n of TINY_MODEL_FILES) modelFile(n as ModelName);
}

/**
 * llama2.c's published greedy output for "Once upon a time" (200 steps from BOS, temperature 0;
 * from its test_all.py, also quoted in ../shared/models/README.md). Kept here so the tests need
 * only the two files a download provides.
 */
export const PUBLISHED_OUTPUT = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily's mom said, "Lily, let's go to the park." Lily was sad and didn't know what to do. She said, "I want to play with your ball, but I can't find it."
Lily was sad and didn't know what to do. She said, "I'm sorry, Lily. I didn't know what to do."
Lily didn't want to help her mom, so she`;
