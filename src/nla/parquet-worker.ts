// Parquet decoding in a worker thread with a deadline. hyparquet trusts page headers: a damaged
// one (e.g. no compressed_page_size) sends its reader to offset NaN, which reads byte 0 forever,
// and a lying run length loops billions of times. Neither can be interrupted in-thread, so the
// decode runs in a worker that is terminated when the deadline passes, and the caller gets an
// error naming the file instead of a hung process.
import { Worker } from 'node:worker_threads';

// Plain JavaScript (an eval worker), importing hyparquet by the URL this module resolves, so it
// runs the same from the TypeScript sources and from dist/ and from any working directory.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fail = (stage) => (e) => parentPort.postMessage({ stage, error: String((e && e.message) || e) });
import(workerData.hyparquet).then(({ parquetMetadata, parquetReadObjects }) => {
  let names;
  try {
    names = parquetMetadata(workerData.buf).schema.slice(1).map((s) => s.name);
  } catch (e) {
    return fail('metadata')(e);
  }
  if (!names.includes(workerData.need)) return parentPort.postMessage({ names });
  return parquetReadObjects({ file: workerData.buf }).then((rows) => parentPort.postMessage({ names, rows }), fail('data'));
}, fail('import'));
`;

/** Generous: a healthy file decodes far faster; only a looping decoder reaches it. */
export function defaultDeadlineMs(bytes: number): number {
  return 60_000 + bytes / 1000; // + 1 s per MB
}

/**
 * The column names of the parquet file held in `buf` (named `file` in errors) and, when it has
 * column `need`, all its rows, decoded within `deadlineMs`. `buf` is handed to the worker.
 */
export function readParquetRows(buf: ArrayBuffer, file: string, need: string, deadlineMs = defaultDeadlineMs(buf.byteLength)): Promise<{ names: string[]; rows?: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: { buf, need, hyparquet: import.meta.resolve('hyparquet') },
      transferList: [buf],
      // A lying list length grows a JS array without end: the worker's heap runs out, not ours.
      resourceLimits: { maxOldGenerationSizeMb: 512 + Math.ceil((16 * buf.byteLength) / 2 ** 20) },
    });
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      f();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`${file}: parquet decoding did not finish within ${(deadlineMs / 1000).toFixed(1)} s; the file is damaged (a page header or run length that loops the decoder)`))), deadlineMs);
    worker.on('message', (m: { names?: string[]; rows?: Record<string, unknown>[]; stage?: string; error?: string }) =>
      finish(() => {
        if (m.error === undefined) return resolve({ names: m.names!, rows: m.rows });
        const what = m.stage === 'metadata' ? 'not a parquet file' : m.stage === 'data' ? 'parquet data unreadable' : 'hyparquet did not load';
        reject(new Error(`${file}: ${what} (${m.error})${m.stage === 'data' ? '; truncated or damaged?' : ''}`));
      }));
    worker.on('error', (e) => finish(() => reject(new Error(`${file}: parquet decoding failed (${e.message})`))));
    worker.on('exit', (code) => finish(() => reject(new Error(`${file}: parquet decoding stopped (worker exit ${code})`))));
  });
}
