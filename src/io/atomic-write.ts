// Small file helpers shared by the format readers/writers.
// Atomic file replacement: write a temp file in the same directory, fsync it, rename it over
// the target, then fsync the directory. A crash mid-write leaves the old file (or none)
// rather than a truncated checkpoint that later fails to parse.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Write `chunks` in order to `target` atomically. */
export function writeFileAtomic(target: string, chunks: Iterable<Uint8Array>): void {
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const fd = fs.openSync(tmp, 'w');
  try {
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
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
