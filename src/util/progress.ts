// A one-line progress bar with rate and ETA on stderr (a TTY redraws in place; otherwise it
// prints a line every 10%). Long work always shows one.
export class Progress {
  private start = performance.now();
  private lastPct = -1;
  constructor(readonly label: string, readonly total: number, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(done: number, extra = ''): void {
    const frac = this.total ? Math.min(1, done / this.total) : 1;
    const secs = (performance.now() - this.start) / 1000;
    const eta = frac > 0 ? secs / frac - secs : 0;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const line = `${this.label} [${bar}] ${done}/${this.total} ${fmtTime(secs)} elapsed, ETA ${fmtTime(eta)}${extra ? '  ' + extra : ''}`;
    if (this.stream.isTTY) this.stream.write(`\r${line.slice(0, (this.stream.columns ?? 120) - 1)}\x1b[K`);
    else {
      const pct = Math.floor(frac * 10);
      if (pct !== this.lastPct || done === this.total) {
        this.lastPct = pct;
        this.stream.write(line + '\n');
      }
    }
  }

  done(extra = ''): void {
    this.update(this.total, extra);
    if (this.stream.isTTY) this.stream.write('\n');
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}
