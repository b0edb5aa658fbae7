#!/usr/bin/env node
// The `nla` command. Each subcommand lives in its own file and registers itself here; the
// files stay thin: parse flags, call the library, print.
import type { Command as CommandType } from 'commander';
import { exitFlushed, ignoreClosedPipes } from './flush.js';
import { relaunchWithoutDawnNoise } from './quiet-dawn.js';

// Loaded after the relaunch check, so the parent that only filters stderr stays light.
ignoreClosedPipes();
await relaunchWithoutDawnNoise();
const { Command } = await import('commander');
const { registerInfo } = await import('./info.js');

const program = new Command();
program
  .name('nla')
  .description(
    'Natural Language Autoencoders: explain a language model\'s activations in words.\n' +
      'Runs on WebGPU (Dawn); on machines without a GPU, run `bash scripts/setup.sh` once to install Mesa lavapipe.\n' +
      'Set NLA_DEBUG=1 (adapter, and Dawn\'s own warnings), 2 (kernel compiles), 3 (WGSL source) for diagnostics.',
  )
  .showHelpAfterError();

const registrars: ((p: CommandType) => void)[] = [registerInfo];
for (const r of registrars) r(program);

const extra = await import('./commands.js').catch((e: { code?: string; message?: string }) => {
  // Only a missing commands file is tolerated; a broken subcommand must not vanish silently.
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && /commands\.(js|ts)/.test(e.message ?? '')) return undefined;
  throw e;
});
extra?.registerAll(program);

// Exits explicitly (the GPU device would keep the process alive), after stdout and stderr drain.
program.parseAsync(process.argv).then(
  () => exitFlushed(0),
  (e: unknown) => {
    console.error(`nla: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.NLA_DEBUG && e instanceof Error) console.error(e.stack);
    return exitFlushed(1);
  },
);
