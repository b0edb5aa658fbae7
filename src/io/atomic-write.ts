// Small file helpers shared by the format readers/writers.
// Atomic file replacement: write a temp file in the same directory, fsync it, rename it over
// the target, then fsync the directory. A crash mid-write leaves the old file (or none)
// rather than a truncated checkpoint that later fails to parse.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A temp file beside `target` (same directory, so the rename cannot cross filesystems) that
 * replaces `target` only on commit(). Writers that must check their bytes before publishing
 * them (the verified model download) write, check, then commit or abort.
 */
export class AtomicFile {
  private readonly dir: string;
  private readonly tmp: string;
  private fd: number | undefined;

  constructor(readonly target: string) {
    this.dir = path.dirname(path.resolve(target));
    const prefix = `.${path.basename(target)}.tmp-`;
    removeStaleTemps(this.dir, prefix);
    this.tmp = path.join(this.dir, `${prefix}${process.pid}-${Math.random().toString(36).slice(2)}`);
    this.fd = fs.openSync(this.tmp, 'w');
  }

  write(chunk: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`${this.target}: write after commit or abort`);
    let off = 0;
    while (off < chunk.length) off += fs.writeSync(this.fd, chunk, off, chunk.length - off);
  }

  /** fsync the data, rename it over the target, then fsync the directory. */
  commit(): void {
    if (this.fd === undefined) throw new Error(`${this.target}: commit after commit or abort`);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = undefined;
    fs.renameSync(this.tmp, this.target);
    syncDir(this.dir);
  }

  /** Drop the temp file; the target stays as it was. Harmless after commit. */
  abort(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Write `chunks` in order to `target` atomically. */
export function writeFileAtomic(target: string, chunks: Iterable<Uint8Array>): void {
  const file = new AtomicFile(target);
  try {
    for (const chunk of chunks) file.write(chunk);
    file.commit();
  } catch (e) {
    file.abort();
    throw e;
  }
}

/** Copy `src` to `target` atomically (streamed in 1 MiB chunks, so model files need not fit in memory). */
export function copyFileAtomic(src: string, target: string): void {
  const fd = fs.openSync(src, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = new Uint8Array(Math.min(size, 1 << 20));
    writeFileAtomic(target, (function* () {
      for (let pos = 0; pos < size; pos += buf.length) {
        const chunk = buf.subarray(0, Math.min(buf.length, size - pos));
        readFully(fd, chunk, pos, src);
        yield chunk;
      }
    })());
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Temp files of `prefix` left by a writer that was killed mid-write (its pid no longer runs,
 * or is a zombie): partial by nature, never renamed into place, so they are only litter;
 * removed best effort.
 */
function removeStaleTemps(dir: string, prefix: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(dir, n), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie answers kill(pid, 0) but writes nothing more. A writer killed with its parent is
  // orphaned, and under an init that does not reap (a container's) it stays a zombie for good.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); // "pid (comm) S ...": comm may hold ')'
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return process.platform !== 'linux'; // no /proc to ask: trust kill(pid, 0)
  }
}

/** Best effort: some platforms (Windows) cannot open a directory for fsync. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // durability of the rename is then up to the OS; the file content itself was synced
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Positioned read that loops until `into` is full (readSync may return short counts). */
export function readFully(fd: number, into: Uint8Array, position: number, file: string): void {
  let off = 0;
  while (off < into.length) {
    const got = fs.readSync(fd, into, off, into.length - off, position + off);
    if (got === 0) throw new Error(`${file}: unexpected end of file at byte ${position + off} (file changed while reading?)`);
    off += got;
  }
}
