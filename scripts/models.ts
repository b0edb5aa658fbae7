// scripts/setup.sh's model step: make stories260K.bin and tok512.bin present (NLA_MODELS, the
// cache, ../shared/models, else the sha256-checked download), or exit 1 saying how to provide them.
// Run from the project root: ../shared/models is relative to it, as for the CLI.
import { ensureModelFiles, ModelNotFoundError } from '../src/io/model-files.js';

try {
  for (const [name, p] of await ensureModelFiles()) console.log(`setup: ${name}: ${p}`);
} catch (e) {
  if (!(e instanceof ModelNotFoundError)) throw e;
  console.error(`setup: ${e.message}`);
  process.exit(1);
}
