// The one HTML page of the viewer: `nla report` writes it with the explanations inlined,
// `nla serve` sends it with a form that asks the server. Everything it needs (style, script,
// uPlot for the training charts, data) is inlined, so it opens from file:// with no network.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type { MetricsView } from './metrics.js';
import { PAGE_CSS, PAGE_JS } from './client.js';
import type { NlaSummary, ViewData } from './view-data.js';

export interface PageBoot {
  mode: 'report' | 'serve';
  nla?: NlaSummary;
  /** Serve mode: the --nla directory, shown even when it failed to load. */
  nlaDir?: string;
  data?: ViewData;
  metrics?: MetricsView;
  /** A message to show on load (e.g. the NLA directory did not load). */
  error?: string;
}

let uplotCache: { js: string; css: string } | undefined;

/** uPlot's browser build and stylesheet, read from the installed package. */
function uplot(): { js: string; css: string } {
  if (!uplotCache) {
    const req = createRequire(import.meta.url);
    const dir = req.resolve('uplot/package.json').replace(/package\.json$/, 'dist/');
    uplotCache = { js: fs.readFileSync(dir + 'uPlot.iife.min.js', 'utf8'), css: fs.readFileSync(dir + 'uPlot.min.css', 'utf8') };
  }
  return uplotCache;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

// JSON inside <script> must not contain "</script" or "<!--": escape every "<" (and the two
// line separators JavaScript once disallowed in strings).
const inlineJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
// A script body must not close its own tag either.
const inlineScript = (js: string) => js.replace(/<\/script/gi, '<\\/script');

export function renderPage(boot: PageBoot): string {
  const u = uplot();
  const title = boot.mode === 'report' ? 'NLA report' : 'NLA viewer';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'">
<title>${escapeHtml(title)}${boot.nla ? ' · ' + escapeHtml(boot.nla.dir) : ''}</title>
<style>${u.css}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
  <h1>${escapeHtml(title)}</h1>
  <div class="sub" id="nla-info">${boot.nlaDir ? escapeHtml(boot.nlaDir) : ''}</div>
  <div class="sub" id="variance-note"></div>
</header>
<main>
  <div id="left">
    <section id="controls" hidden>
      <form id="form">
        <textarea id="text" name="text" placeholder="Type or paste text; each of its tokens gets explained">Once upon a time, there was a little girl named Lily.</textarea>
        <div class="row">
          <label>samples <input id="samples" type="number" min="1" max="16" value="4" title="explanations per token, sorted best-first by the AR"></label>
          <label>temperature <input id="temperature" type="number" min="0" max="5" step="0.1" value="1" title="0 = greedy (use with 1 sample)"></label>
          <label>seed <input id="seed" type="number" min="0" value="0"></label>
          <button id="go" type="submit">Explain</button>
          <progress id="progress" hidden></progress>
          <span id="status"></span>
        </div>
        <div class="row"><label>known facts <input id="facts" class="dir" placeholder="name=Lily place=park (optional)" title="for known-answer text: its latent facts (fields name, place, object, colour, emotion, event); each fact an explanation states is then marked true or false"></label></div>
        <div class="row"><label>vectors file <input id="vectors" class="dir" placeholder="explain vectors from a file instead of the text (optional)" title="a file on this machine: .npy, .safetensors (its only tensor), .jsonl (one array a line, or objects with a vector field) or .parquet (activation_vector), as nla explain --vectors"></label></div>
        <div class="row"><label>NLA directory <input id="nla-dir" class="dir" title="an NLA directory on this machine: nla's own (nla.json, av/ar.safetensors) or a reference pair (av/ and ar/ with nla_meta.yaml)"></label></div>
      </form>
    </section>
    <div id="message" role="alert" hidden></div>
    <div class="legend"><span>best explanation's FVE:</span><span>≤ 0</span><span class="bar"></span><span>1</span><span class="muted" id="settings-note"></span></div>
    <div id="docs"></div>
    <p class="muted" id="baseline-note"></p>
    <section id="training" hidden>
      <h2>Training</h2>
      <div class="muted">from <span id="metrics-file"></span></div>
      <div class="charts" id="charts"></div>
      <h2>Evaluation</h2>
      <div id="evals"></div>
    </section>
  </div>
  <aside id="panel"><div id="panel-body" class="muted">Click a token to see its explanations.</div></aside>
</main>
<script type="application/json" id="nla-boot">${inlineJson(boot)}</script>
<script>${inlineScript(u.js)}</script>
<script>${inlineScript(PAGE_JS)}</script>
</body>
</html>
`;
}
