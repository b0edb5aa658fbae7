// Warm-start data: ask an OpenAI-compatible chat endpoint to summarise each text, as the
// published NLAs did ("the 2–3 most important features the model would use to predict the
// next token"). Runs for hours against rate-limited APIs, so it is built to be stopped:
// each finished item is appended as one JSONL line at once, and a restart skips ids already
// in the output file.

import { appendFileSync, existsSync, readFileSync, truncateSync } from 'node:fs';
import { parseJson } from '../io/json.js';
import { readJsonlDocs, readTextDocs } from './model-text.js';

/**
 * Limits on an endpoint's answer. A chat completion for one summary is a few KB; a body past
 * `responseBytes` is cut off while it streams in (never buffered whole), and an answer longer
 * than `summaryChars` is treated as malformed (retried like one).
 */
export const RESPONSE_LIMITS = { responseBytes: 4 << 20, summaryChars: 16_384 };

export const DEFAULT_SUMMARY_PROMPT =
  'Below is the beginning of a short story. A small language model reads it and must predict ' +
  'the next token. In at most 30 words, state the 2-3 most important features it would use: ' +
  'the last few words just read first, then the key story facts, then what comes next. ' +
  'Reply with the summary only.';

export interface TextItem { id: string | number; text: string }
export interface SummaryItem { id?: string | number; text: string; summary: string }

export interface SummarizeOptions {
  /** The items; or `texts` (ids are their indices); or `inputJsonl` (lines {id?, text}). */
  items?: TextItem[];
  texts?: string[];
  inputJsonl?: string;
  outPath: string;
  /** Base URL, e.g. https://api.openai.com/v1 (".../chat/completions" is appended). */
  endpoint: string;
  model: string;
  /** Name of the environment variable holding the API key; none → no Authorization header. */
  apiKeyEnv?: string;
  concurrency?: number;
  /** Extra attempts after the first, on 429 / 5xx / network errors / malformed answers. */
  retries?: number;
  /** First backoff delay; doubles every attempt. */
  baseDelayMs?: number;
  prompt?: string;
  temperature?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SummarizeResult { total: number; skipped: number; written: number }

/** An error that another attempt will not fix (bad key, bad request). */
class FatalRequestError extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function decodeUtf8(path: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path));
  } catch (e) {
    if (e instanceof TypeError) throw new Error(`${path}: not valid UTF-8`);
    throw e;
  }
}

// Parse non-empty JSONL lines with errors that name the file and line.
function readJsonl(path: string): { line: number; value: Record<string, unknown> }[] {
  const out: { line: number; value: Record<string, unknown> }[] = [];
  decodeUtf8(path).split('\n').forEach((raw, k) => {
    if (!raw.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new Error(`${path}:${k + 1}: invalid JSON (${(e as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new Error(`${path}:${k + 1}: expected a JSON object`);
    }
    out.push({ line: k + 1, value: value as Record<string, unknown> });
  });
  return out;
}

/** Lines {text, summary} (and optionally id); errors name the file and line number. */
export function readSummariesJsonl(path: string): SummaryItem[] {
  return readJsonl(path).map(({ line, value }) => {
    for (const key of ['text', 'summary']) {
      if (typeof value[key] !== 'string') throw new Error(`${path}:${line}: field "${key}" missing or not a string`);
    }
    const item: SummaryItem = { text: value.text as string, summary: value.summary as string };
    if (typeof value.id === 'string' || typeof value.id === 'number') item.id = value.id;
    return item;
  });
}

/** Documents of a corpus: JSONL lines {text} if the file ends in .jsonl, else blank-line-separated text. */
export function readTextCorpus(path: string): string[] {
  return path.endsWith('.jsonl') ? readJsonlDocs(path) : readTextDocs(path);
}

function loadItems(opts: SummarizeOptions): TextItem[] {
  const sources = [opts.items, opts.texts, opts.inputJsonl].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new Error('summarizeCorpus: give exactly one of items, texts or inputJsonl');
  if (opts.items) return opts.items;
  if (opts.texts) return opts.texts.map((text, id) => ({ id, text }));
  if (opts.inputJsonl) {
    const path = opts.inputJsonl;
    return readJsonl(path).map(({ line, value }, k) => {
      if (typeof value.text !== 'string') throw new Error(`${path}:${line}: field "text" missing or not a string`);
      const id = typeof value.id === 'string' || typeof value.id === 'number' ? value.id : k;
      return { id, text: value.text };
    });
  }
  throw new Error('unreachable');
}

// Ids already written. A crash mid-write can leave a partial last line: cut it off so the
// item is redone and the next append starts on a fresh line.
function doneIds(outPath: string): Set<string> {
  const done = new Set<string>();
  if (!existsSync(outPath)) return done;
  const raw = readFileSync(outPath, 'utf8');
  const complete = raw.endsWith('\n') || raw === '' ? raw : raw.slice(0, raw.lastIndexOf('\n') + 1);
  if (complete.length !== raw.length) truncateSync(outPath, Buffer.byteLength(complete));
  complete.split('\n').forEach((line, k) => {
    if (!line.trim()) return;
    try {
      done.add(String((JSON.parse(line) as { id: unknown }).id));
    } catch {
      throw new Error(`${outPath}:${k + 1}: invalid JSON in the output file; fix or remove that line`);
    }
  });
  return done;
}

async function requestSummary(opts: SummarizeOptions, apiKey: string | undefined, text: string): Promise<string> {
  const url = opts.endpoint.replace(/\/+$/, '') + '/chat/completions';
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const body = JSON.stringify({
    model: opts.model,
    temperature: opts.temperature ?? 0,
    messages: [
      { role: 'system', content: opts.prompt ?? DEFAULT_SUMMARY_PROMPT },
      { role: 'user', content: text },
    ],
  });
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000) });
  } catch (e) {
    const cause = (e as { cause?: Error }).cause;
    throw new Error(`${url}: request failed (${(e as Error).message}${cause ? `: ${cause.message}` : ''})`);
  }
  const raw = await boundedText(res, url);
  if (!res.ok) {
    const msg = `${url}: HTTP ${res.status}: ${raw.slice(0, 200)}`;
    if (res.status === 429 || res.status >= 500) throw new Error(msg);
    throw new FatalRequestError(msg);
  }
  let json: unknown;
  try {
    json = parseJson(raw, url, 'response');
  } catch (e) {
    // parseJson's message starts with the url it was given; keep only its reason.
    throw new Error(`${url}: response is not JSON (${(e as Error).message.slice(url.length + 2, url.length + 200)}): ${raw.slice(0, 200)}`);
  }
  const content = (json as { choices?: { message?: { content?: unknown } }[] })?.choices?.[0]?.message?.content;
  if (typeof content !== 'string' || !content.trim()) {
    throw new Error(`${url}: malformed response, no choices[0].message.content: ${raw.slice(0, 200)}`);
  }
  if (content.length > RESPONSE_LIMITS.summaryChars) {
    throw new Error(`${url}: choices[0].message.content is ${content.length.toLocaleString('en-US')} characters, more than the ${RESPONSE_LIMITS.summaryChars.toLocaleString('en-US')} a summary may have`);
  }
  return content.trim();
}

/** The body as text, refused (naming `url`) once it passes RESPONSE_LIMITS.responseBytes. */
async function boundedText(res: Response, url: string): Promise<string> {
  const max = RESPONSE_LIMITS.responseBytes;
  const tooBig = (n: string) => new Error(`${url}: response body of ${n} bytes, more than the ${max.toLocaleString('en-US')} nla reads`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    throw tooBig(declared.toLocaleString('en-US'));
  }
  if (!res.body) return '';
  const reader = res.body.getReader(), chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.byteLength;
      if (n > max) {
        await reader.cancel().catch(() => {});
        throw tooBig(`at least ${n.toLocaleString('en-US')}`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if ((e as Error).message.startsWith(url)) throw e;
    // A connection cut short (a lying Content-Length, a dropped socket) or the timeout.
    throw new Error(`${url}: reading the response failed (${(e as Error).message}${(e as { cause?: Error }).cause ? `: ${(e as { cause: Error }).cause.message}` : ''})`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Summarise every item not yet in `outPath`, at most `concurrency` requests at a time. On an
 * item that still fails after its retries, no new items start, the ones in flight finish
 * and are written, and the error names the item.
 */
export async function summarizeCorpus(opts: SummarizeOptions): Promise<SummarizeResult> {
  const { concurrency = 4, retries = 4, baseDelayMs = 1000 } = opts;
  let apiKey: string | undefined;
  if (opts.apiKeyEnv) {
    apiKey = process.env[opts.apiKeyEnv];
    if (!apiKey) throw new Error(`environment variable ${opts.apiKeyEnv} (the API key) is not set`);
  }
  const items = loadItems(opts);
  const done = doneIds(opts.outPath);
  const todo = items.filter((it) => !done.has(String(it.id)));
  const result: SummarizeResult = { total: items.length, skipped: items.length - todo.length, written: 0 };

  let next = 0;
  let failure: Error | undefined;
  const worker = async () => {
    while (!failure && next < todo.length) {
      const item = todo[next++]!;
      for (let attempt = 0; ; attempt++) {
        try {
          const summary = await requestSummary(opts, apiKey, item.text);
          // One synchronous append per item: a whole line or (on a crash) a cut line, never two mixed.
          appendFileSync(opts.outPath, JSON.stringify({ id: item.id, text: item.text, summary }) + '\n');
          result.written++;
          opts.onProgress?.(result.skipped + result.written, result.total);
          break;
        } catch (e) {
          const err = e as Error;
          if (err instanceof FatalRequestError || attempt >= retries) {
            failure ??= new Error(
              `summarizeCorpus: item ${JSON.stringify(item.id)} failed after ${attempt + 1} attempt(s): ${err.message}`,
            );
            return;
          }
          await sleep(baseDelayMs * 2 ** attempt * (0.75 + 0.5 * Math.random()));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, todo.length)) }, worker));
  if (failure) throw failure;
  return result;
}
