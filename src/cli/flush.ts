// process.exit() ends the process at once: whatever a piped stdout or stderr still holds in
// Node's buffers (all past the ~64 KiB a pipe takes while its reader is slower) is lost. So the
// CLI exits only after both streams have handed everything to the OS.

/** Resolves once everything written to `stream` so far is flushed (or the stream is gone). */
export function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    // Writes complete in order, so an empty write's callback comes after all earlier ones.
    stream.write('', () => resolve());
  });
}

/** A reader that went away (`nla ... | head`) is not an error of ours: nothing more to deliver. */
export function ignoreClosedPipes(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
}

/** Flush stdout and stderr, then exit with `code`. */
export async function exitFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
