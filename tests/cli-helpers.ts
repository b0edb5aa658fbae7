// Spawning the CLI from tests: `node --import tsx src/cli/main.ts ...` with a timeout.
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], timeoutMs = 60_000, extraEnv: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? os.tmpdir(), ...extraEnv };
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], { cwd: root, env });
    let stdout = '', stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nla ${args.join(' ')}: timed out after ${timeoutMs} ms\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => (clearTimeout(timer), reject(e)));
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

/** Run and require exit code 0 (the message carries stderr). */
export async function okCli(args: string[], timeoutMs?: number, extraEnv?: Record<string, string>): Promise<CliResult> {
  const r = await runCli(args, timeoutMs, extraEnv);
  if (r.code !== 0) throw new Error(`nla ${args.join(' ')} exited ${r.code}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`);
  return r;
}
