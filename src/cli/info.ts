// `nla info`: what GPU adapter the engine got, its features and limits.
import type { Command } from 'commander';
import { adapterName, initGpu } from '../tensor/device.js';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print the WebGPU adapter, whether it is a software (CPU) adapter, its features and limits')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const g = await initGpu();
      const i = g.info;
      if (opts.json) {
        console.log(JSON.stringify({ adapter: adapterName(i), robust: g.robust, ...i }));
        return;
      }
      console.log(`adapter:   ${adapterName(i)}`);
      console.log(`software:  ${i.isSoftware ? 'yes (a CPU implementation such as lavapipe: expect CPU-bound speed)' : 'no (a hardware GPU)'}`);
      if (i.isSoftware) console.log(`threads:   LP_NUM_THREADS=${process.env.LP_NUM_THREADS ?? '(unset)'} (lavapipe's workers; nla defaults to 4 per core)`);
      console.log(`robust:    ${g.robust ? "yes (Dawn's bounds checks on)" : 'no (the driver checks bounds itself; NLA_ROBUST=1 turns Dawn\'s on too)'}`);
      console.log(`features:  ${i.features.join(', ')}`);
      console.log('limits:');
      for (const [k, v] of Object.entries(i.limits)) console.log(`  ${k.padEnd(44)} ${v}`);
    });
}
