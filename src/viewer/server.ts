// `nla serve`'s HTTP server (Node's own http module, no framework):
//   GET  /               the page; 500 with the message on it when the --nla directory does not load
//   POST /api/explain    {"text","samples","temperature","seed","nla"?,"facts"?} or, instead of
//                        "text", {"vectors": FILE, "tensor"?, "field"?} -> JSON lines:
//                        {"type":"queued","ahead"}, {"type":"progress","done","total"},
//                        then {"type":"result","data":ViewData} or {"type":"error","error"}
// A bad request is refused before anything streams, with a status and {"error": message}:
// 400 for the text or settings, 422 for an NLA directory that does not load, 413 for a body
// over 1 MB. Requests wait in one queue so GPU work never interleaves.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ReferencePair } from '../nla/reference.js';
import { renderPage } from './page.js';
import { NlaLoadError, probeNla, ViewerSession } from './session.js';
import { checkFacts, parseFactsText, type Facts } from '../nla/fact-marks.js';
import { checkSettings, InputError, summarize, type ViewData } from './view-data.js';

const MAX_BODY = 1 << 20;

function sendJson(res: http.ServerResponse, status: number, v: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(v));
}

function statusOf(e: unknown): number {
  return e instanceof InputError ? 400 : e instanceof NlaLoadError ? 422 : 500;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) reject(Object.assign(new InputError(`request body over ${MAX_BODY} bytes`), { status: 413 }));
      else parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

export interface ServeOptions {
  /** The NLA directory, or a reference pair's label when `pair` gives its --av/--ar. */
  nla: string;
  pair?: ReferencePair;
  maxTokens?: number;
  store?: string;
  metrics?: string;
  model?: string;
  port?: number;
  host?: string;
  /** Called with each request's outcome (the CLI logs it). */
  log?: (line: string) => void;
}

export class ViewerServer {
  readonly session: ViewerSession;
  private server: http.Server;

  constructor(private readonly opts: ServeOptions) {
    this.session = new ViewerSession(opts.nla, { store: opts.store, metrics: opts.metrics, model: opts.model, pair: opts.pair, maxTokens: opts.maxTokens });
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        // Nothing may take the server down: a failure answers this request only.
        opts.log?.(`error: ${(e as Error).stack ?? e}`);
        if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
        else res.end();
      });
    });
  }

  /** Listen; resolves with the page's URL. Loads the --nla directory first (a failure is shown on the page). */
  async start(): Promise<string> {
    try {
      await this.session.enqueue(() => this.session.load(this.opts.nla));
    } catch (e) {
      this.opts.log?.(`the NLA did not load: ${(e as Error).message}`);
    }
    const port = this.opts.port ?? 8080, host = this.opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'EADDRINUSE' ? new Error(`--port ${port}: ${host}:${port} is in use; pick another port, or --port 0 for any free one`) : e));
      this.server.listen(port, host, () => resolve());
    });
    const a = this.server.address() as AddressInfo;
    const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${shown}:${a.port}/`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.session.enqueue(async () => this.session.dispose());
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) return this.page(res);
    if (url.pathname === '/api/explain') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'POST a JSON body {"text": ...} to /api/explain' });
      return this.explain(req, res);
    }
    if (req.method === 'GET' && url.pathname === '/favicon.ico') return void res.writeHead(204).end();
    sendJson(res, 404, { error: `${url.pathname}: no such page (the viewer is at /)` });
  }

  private async page(res: http.ServerResponse): Promise<void> {
    const dir = this.opts.nla;
    let status = 200, error: string | undefined, nla, metrics;
    try {
      if (this.session.loadedDir !== undefined && this.session.loadedDir !== dir) {
        // The page switched to another NLA: describe --nla from its files, without reloading it.
        const probed = this.opts.pair ? undefined : probeNla(dir);
        nla = probed && summarize(probed, dir);
        metrics = this.session.metricsFor(dir);
      } else {
        const l = await this.session.enqueue(() => this.session.load(dir));
        nla = summarize(l.nla, dir);
        metrics = l.metrics;
      }
    } catch (e) {
      status = statusOf(e) === 400 ? 400 : 500;
      error = `The NLA directory did not load: ${(e as Error).message}`;
      try {
        metrics = this.session.metricsFor(dir);
      } catch {
        // The metrics are extra; the load error is the message to show.
      }
    }
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(renderPage({ mode: 'serve', nla, nlaDir: dir, metrics, error }));
  }

  private async explain(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let dir: string, job: (progress: (done: number, total: number) => void) => Promise<ViewData>;
    try {
      const raw = await readBody(req);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw);
      } catch (e) {
        throw new InputError(`request body: not valid JSON (${(e as Error).message})`);
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InputError('request body: expected a JSON object {"text": ...}');
      dir = typeof body.nla === 'string' && body.nla.trim() ? body.nla.trim() : this.opts.nla;
      const settings = checkSettings(body);
      const opt = (k: string) => (typeof body[k] === 'string' && (body[k] as string).trim() ? (body[k] as string).trim() : undefined);
      const file = opt('vectors');
      if (file !== undefined) {
        // Vectors from a file on this machine (the formats of `nla explain --vectors`), read in the queue.
        if (typeof body.text === 'string' && body.text.trim()) throw new InputError('give a text or a vectors file, not both');
        if (opt('facts') !== undefined) throw new InputError('facts: known facts are for a text, not for vectors');
        this.session.check(dir, []);
        const vecs = await ViewerSession.readVectors(file, { tensor: opt('tensor'), field: opt('field') });
        job = (progress) => this.session.viewVectors(dir, file, vecs, settings, progress);
      } else {
        if (typeof body.text !== 'string') throw new InputError('text: missing; send {"text": "..."} (or {"vectors": FILE})');
        const text = body.text;
        // Known-answer text: its latent facts, as {"name": "Lily", ...} or "name=Lily place=park".
        let facts: Facts | undefined;
        try {
          facts = typeof body.facts === 'string' ? parseFactsText(body.facts) : body.facts === undefined || body.facts === null ? undefined : checkFacts(body.facts);
        } catch (e) {
          throw new InputError((e as Error).message);
        }
        // A pair that cannot be probed without loading is loaded first (in the queue), so a bad
        // directory or text is still refused with a status before anything streams.
        if (!this.session.check(dir, [text])) {
          await this.session.enqueue(() => this.session.load(dir));
          this.session.check(dir, [text]);
        }
        job = (progress) => this.session.view(dir, [{ text, facts }], settings, progress);
      }
    } catch (e) {
      const status = (e as { status?: number }).status ?? statusOf(e);
      this.opts.log?.(`POST /api/explain -> ${status}: ${(e as Error).message}`);
      return sendJson(res, status, { error: (e as Error).message });
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
    const send = (v: unknown) => res.write(JSON.stringify(v) + '\n');
    send({ type: 'queued', ahead: this.session.ahead });
    try {
      const t0 = Date.now();
      const data = await this.session.enqueue(() => job((done, total) => send({ type: 'progress', done, total })));
      send({ type: 'result', data });
      const what = data.vectors ? `${data.vectors.rows.length} vectors` : `${data.docs[0].tokens.length} tokens`;
      this.opts.log?.(`POST /api/explain -> 200: ${what} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      // Headers are sent; the failure travels as the last line and the page shows it.
      this.opts.log?.(`POST /api/explain failed: ${(e as Error).message}`);
      send({ type: 'error', error: (e as Error).message });
    }
    res.end();
  }
}
