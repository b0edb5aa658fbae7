// Keeps Dawn's "maxDynamic...BuffersPerPipelineLayout artificially reduced" warnings off the
// user's terminal. Dawn's Vulkan backend prints them (two per Dawn instance, four per command
// on lavapipe, which reports 1,000,000 dynamic buffers where Dawn supports 16) while it
// discovers adapters, before any device or limit is requested, so no choice of requiredLimits
// avoids them; and they are written to fd 2 by native code, which Node cannot redirect
// in-process. So the CLI runs itself as a child with stderr piped and drops exactly those
// lines; everything else passes through as it arrives. NLA_DEBUG (any level) shows them.
// This module imports nothing heavy: the parent never loads the engine.
import { spawn } from 'node:child_process';
import { exitFlushed, flushed } from './flush.js';

const NOISE = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const PREFIX = 'Warning: maxDynamic';
const CHILD = 'NLA_CLI_CHILD';
const TTY_COLUMNS = 'NLA_STDERR_TTY_COLUMNS';

/**
 * Drops Dawn's limit warnings from a stream of stderr text. Holds back only the start of a line
 * that may still turn out to be one (so progress bars that redraw without a newline are not
 * delayed).
 */
export class DawnNoiseFilter {
  private held = '';
  private atLineStart = true;

  push(text: string): string {
    const s = this.held + text;
    this.held = '';
    let out = '';
    let i = 0;
    while (i < s.length) {
      const nl = s.indexOf('\n', i);
      if (!this.atLineStart) {
        if (nl < 0) return out + s.slice(i);
        out += s.slice(i, nl + 1);
        this.atLineStart = true;
      } else if (nl < 0) {
        const line = s.slice(i);
        if (PREFIX.startsWith(line) || line.startsWith(PREFIX)) this.held = line;
        else {
          out += line;
          this.atLineStart = false;
        }
        return out;
      } else if (!NOISE.test(s.slice(i, nl))) out += s.slice(i, nl + 1);
      i = nl + 1;
    }
    return out;
  }

  /** What is still held back when the stream ends (a line that never finished). */
  end(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }
}

/** Nothing to filter: debugging, already the child, or help/version (no GPU is touched). */
function runInProcess(args: string[]): boolean {
  if ((Number(process.env.NLA_DEBUG ?? 0) || 0) > 0 || process.env[CHILD]) return true;
  return args.length === 0 || args.some((a) => a === '-h' || a === '--help' || a === '-V' || a === '--version' || a === 'help');
}

/**
 * In the parent: run this same command line in a child with Dawn's noise filtered out of its
 * stderr, then exit as the child did (same code, or the same signal). Returns only when the
 * command should run in this process instead: in the child, when debugging, for help, or if
 * the child cannot be started.
 */
export async function relaunchWithoutDawnNoise(): Promise<void> {
  if (process.env[CHILD]) {
    // A parent killed outright (SIGKILL cannot be forwarded) takes the child with it: an
    // orphan would go on training and writing checkpoints beside the run that resumes them.
    process.channel?.unref();
    process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
    // The child's stderr is a pipe; keep progress bars redrawing in place when the user's
    // stderr is a terminal.
    const cols = process.env[TTY_COLUMNS];
    delete process.env[TTY_COLUMNS];
    if (cols) Object.assign(process.stderr, { isTTY: true, columns: Number(cols) });
    return;
  }
  if (runInProcess(process.argv.slice(2))) return;
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD]: '1' };
  if (process.stderr.isTTY) env[TTY_COLUMNS] = String(process.stderr.columns ?? 80);
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: ['inherit', 'inherit', 'pipe', 'ipc'], env });
  const started = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!started) return;
  // A terminal's Ctrl-C reaches both processes; a signal sent to this one alone is passed on.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const forward = (sig: NodeJS.Signals) => void child.kill(sig);
  for (const sig of signals) process.on(sig, forward);
  const filter = new DawnNoiseFilter();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    const out = filter.push(s);
    if (out) process.stderr.write(out);
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  const rest = filter.end();
  if (rest) process.stderr.write(rest);
  if (signal) {
    await flushed(process.stderr);
    for (const sig of signals) process.off(sig, forward);
    process.kill(process.pid, signal);
  }
  return exitFlushed(code ?? 1);
}
