// Benchmark entry point: `npm run bench -- <name> [args...]` runs bench/<name>.ts's
// `export async function run(args: string[])`. Each bench prints JSON lines (one object per
// measurement, with a "bench" key) plus human-readable lines starting with "#".
// `npm run bench` alone lists the benches found next to this file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

interface BenchModule { run(args: string[]): Promise<unknown> }

/** Benches: every bench/<name>.ts (other than this file) that exports run(). */
export function benchNames(): string[] {
  return fs
    .readdirSync(here)
    .filter((f) => f.endsWith('.ts') && f !== 'main.ts' && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => /export\s+async\s+function\s+run\b/.test(fs.readFileSync(path.join(here, `${n}.ts`), 'utf8')))
    .sort();
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const names = benchNames();
  if (!name || name === '--help' || name === '-h') {
    console.log(`usage: npm run bench -- <name> [args...]\nbenches: ${names.join(', ') || '(none)'}`);
    return name ? 0 : 1;
  }
  if (!names.includes(name)) {
    console.error(`bench: unknown bench "${name}"; available: ${names.join(', ') || '(none)'}`);
    return 1;
  }
  // tsx maps the .js specifier onto bench/<name>.ts.
  const mod = (await import(`./${name}.js`)) as BenchModule;
  await mod.run(args);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    process.exit(1);
  },
);
