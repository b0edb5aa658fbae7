// The page's own script and style, as strings inlined into every page (served or written), so
// a report is one file with nothing to fetch. Plain browser JavaScript (no build step); model
// text is only ever set with textContent, never parsed as HTML.

export const PAGE_CSS = String.raw`
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 10px 16px; background: #f3f3f3; border-bottom: 1px solid #ddd; }
header h1 { font-size: 18px; margin: 0 0 2px; }
header .sub { color: #555; font-size: 12px; }
main { display: flex; gap: 16px; padding: 12px 16px; align-items: flex-start; }
#left { flex: 3; min-width: 0; }
#panel { flex: 2; min-width: 280px; position: sticky; top: 8px; border: 1px solid #ddd; border-radius: 6px; padding: 10px; background: #fff; }
#controls textarea { width: 100%; box-sizing: border-box; min-height: 70px; font: inherit; }
#controls .row { display: flex; gap: 12px; flex-wrap: wrap; align-items: center; margin: 6px 0; }
#controls input[type=number] { width: 70px; }
#controls input.dir { width: 320px; }
#message { margin: 8px 0; padding: 6px 10px; border-radius: 4px; background: #fde8e8; color: #8a1010; white-space: pre-wrap; }
#status { color: #555; font-size: 12px; }
.doc { margin: 10px 0; padding: 8px; border: 1px solid #eee; border-radius: 6px; white-space: pre-wrap; word-break: break-word; }
.tok { cursor: pointer; border-radius: 3px; padding: 1px 0; margin: 0 1px; border-bottom: 2px solid transparent; }
.tok.bos { font-size: 11px; color: #666; }
.tok.sel { outline: 2px solid #1a56db; }
.legend { font-size: 12px; color: #555; display: flex; gap: 6px; align-items: center; }
.claims { margin-top: 2px; display: flex; flex-wrap: wrap; gap: 4px; }
.claim { font-size: 12px; padding: 0 5px; border-radius: 3px; }
.claim.true { background: #dcf5dc; color: #0b5d0b; }
.claim.false { background: #fde0e0; color: #8a1010; }
.facts-line { font-size: 12px; color: #555; margin-bottom: 4px; white-space: normal; }
.legend .bar { width: 160px; height: 10px; background: linear-gradient(to right, hsl(0,80%,80%), hsl(60,80%,80%), hsl(120,60%,78%)); }
table { border-collapse: collapse; font-size: 13px; }
td, th { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#panel h2, section h2 { font-size: 15px; margin: 4px 0 6px; }
.muted { color: #777; font-size: 12px; }
#training .charts { display: flex; flex-wrap: wrap; gap: 10px; }
#training .chart { border: 1px solid #eee; border-radius: 4px; padding: 4px; }
#training .chart .title { font-size: 12px; color: #444; }
#evals { overflow-x: auto; max-width: 100%; }
`;

export const PAGE_JS = String.raw`
(function () {
  'use strict';
  var boot = JSON.parse(document.getElementById('nla-boot').textContent);
  var $ = function (id) { return document.getElementById(id); };
  var el = function (tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  var f3 = function (x) { return (typeof x === 'number' && isFinite(x)) ? x.toFixed(3) : '–'; };
  var view = null; // the ViewData on show

  // FVE 1 is green, 0.5 yellow, 0 and below red: the colour says how well the best
  // explanation rebuilt the activation at that token.
  function colour(fve) {
    var t = Math.max(0, Math.min(1, fve));
    return 'hsl(' + Math.round(t * 120) + ',75%,' + (80 - 2 * t) + '%)';
  }
  function factsText(f) { return Object.keys(f).map(function (k) { return k + '=' + f[k]; }).join(' ') || 'none'; }
  // One claim of an explanation, marked against the facts read at this token.
  function claimEl(c) {
    var said = c.field + ' = ' + c.said.join(' / ');
    var why = c.ok ? '' : (c.truth === undefined ? ' (not read yet)' : ' (text: ' + c.truth + ')');
    var e = el('span', 'claim ' + (c.ok ? 'true' : 'false'), (c.ok ? '\u2713 ' : '\u2717 ') + said + why);
    e.dataset.field = c.field; e.dataset.ok = String(c.ok);
    e.title = c.ok ? 'true: the text has stated this by here' : 'false: ' + (c.truth === undefined ? 'the text has not stated this field by here' : 'the text says ' + c.truth);
    return e;
  }
  function shown(token) { return token.replace(/^\n?<s>\n?$/, '<s>'); }

  function message(text) {
    var m = $('message');
    if (!text) { m.hidden = true; m.textContent = ''; return; }
    m.hidden = false; m.textContent = text;
  }

  function header(nla) {
    if (!nla) return;
    $('nla-info').textContent = (nla.reference ? 'reference pair ' + nla.reference.av + ' + ' + nla.reference.ar : nla.dir) + ' · ' + nla.model + ' · layer ' + nla.layer +
      ' · Var ' + f3(nla.variance) + ' · context ' + nla.maxSeqLen + ' tokens';
    $('variance-note').textContent = nla.varianceNote || '';
  }

  // Vectors from a file: one row each (its label, coloured by the best explanation's FVE).
  function renderVectors(data) {
    var box = $('docs');
    var v = el('div', 'doc vectors');
    v.appendChild(el('div', 'facts-line', 'vectors of ' + data.vectors.file));
    data.vectors.rows.forEach(function (r) {
      var best = r.explanations[0];
      var s = el('span', 'tok vec', '[' + r.index + '] ' + r.label);
      s.dataset.index = String(r.index);
      s.style.background = colour(best ? best.fve : 0);
      s.title = 'vector ' + r.index + ' · best FVE ' + f3(best && best.fve);
      s.addEventListener('click', function () { selectVector(r.index); });
      v.appendChild(s);
      v.appendChild(document.createTextNode(' '));
    });
    box.appendChild(v);
  }

  function explanationTable(list) {
    var tb = el('table', 'expls');
    var hr = el('tr'); ['#', 'FVE', 'MSE', 'quote p', 'explanation'].forEach(function (c, i) { hr.appendChild(el('th', i < 4 ? 'num' : null, c)); }); tb.appendChild(hr);
    list.forEach(function (e, i) {
      var r = el('tr', 'expl');
      r.appendChild(el('td', 'num rank', String(i + 1)));
      r.appendChild(el('td', 'num fve', f3(e.fve)));
      r.appendChild(el('td', 'num mse', f3(e.mse)));
      // The AV's own probability of the words it quotes: low says not to trust the quote.
      var qp = el('td', 'num quote-p', typeof e.quoteP === 'number' ? e.quoteP.toFixed(2) : '\u2014');
      qp.title = 'the AV\u2019s own probability of its opening quotation (low: do not trust the quote)';
      r.appendChild(qp);
      var td = el('td', 'text');
      td.appendChild(el('span', 'expl-text', e.text));
      if (e.claims) {
        var cs = el('div', 'claims');
        if (!e.claims.length) cs.appendChild(el('span', 'muted', 'states no known fact'));
        e.claims.forEach(function (c) { cs.appendChild(claimEl(c)); });
        td.appendChild(cs);
      }
      r.appendChild(td);
      tb.appendChild(r);
    });
    return tb;
  }

  function selectVector(i) {
    var r = view.vectors.rows[i];
    Array.prototype.forEach.call(document.querySelectorAll('.tok.sel'), function (e) { e.classList.remove('sel'); });
    var s = document.querySelector('.vec[data-index="' + i + '"]');
    if (s) s.classList.add('sel');
    var p = $('panel-body');
    p.textContent = '';
    p.className = '';
    var h = el('div');
    h.appendChild(el('b', 'sel-token', r.label));
    h.appendChild(el('span', 'muted', '  vector ' + r.index + ' of ' + view.vectors.file));
    p.appendChild(h);
    p.appendChild(el('h2', null, 'Explanations (best first)'));
    p.appendChild(explanationTable(r.explanations));
    p.appendChild(el('p', 'muted', 'The vector is rescaled to the AV\u2019s injection scale, as the reference does; FVE = 1 \u2212 MSE/Var of the AR\u2019s reconstruction.'));
  }

  function renderDocs(data) {
    view = data;
    var box = $('docs');
    box.textContent = '';
    if (data.vectors) renderVectors(data);
    data.docs.forEach(function (doc, di) {
      var d = el('div', 'doc');
      d.dataset.doc = String(di);
      if (doc.facts) d.appendChild(el('div', 'facts-line', 'known facts of this text: ' + factsText(doc.facts)));
      doc.tokens.forEach(function (t) {
        var best = t.explanations[0];
        var s = el('span', 'tok' + (t.position === 0 ? ' bos' : ''), shown(t.token));
        s.dataset.doc = String(di);
        s.dataset.pos = String(t.position);
        s.style.background = colour(best ? best.fve : 0);
        s.title = 'position ' + t.position + ' · best FVE ' + f3(best && best.fve);
        s.addEventListener('click', function () { select(di, t.position); });
        d.appendChild(s);
      });
      box.appendChild(d);
    });
    $('baseline-note').textContent = data.baselines.note;
    var st = data.settings;
    $('settings-note').textContent = st ? ('samples ' + st.samples + ', temperature ' + st.temperature + ', seed ' + st.seed) : '';
    if (data.docs.length && data.docs[0].tokens.length > 1) select(0, 1);
    else if (data.vectors && data.vectors.rows.length) selectVector(0);
  }

  function select(di, pos) {
    var t = view.docs[di].tokens[pos];
    Array.prototype.forEach.call(document.querySelectorAll('.tok.sel'), function (e) { e.classList.remove('sel'); });
    var s = document.querySelector('.tok[data-doc="' + di + '"][data-pos="' + pos + '"]');
    if (s) s.classList.add('sel');
    var p = $('panel-body');
    p.textContent = '';
    p.className = '';
    var h = el('div');
    h.appendChild(el('b', 'sel-token', JSON.stringify(shown(t.token))));
    h.appendChild(el('span', 'muted', '  position ' + t.position + ' (BOS is 0) · token id ' + t.id));
    p.appendChild(h);

    p.appendChild(el('h2', null, 'Explanations (best first)'));
    p.appendChild(explanationTable(t.explanations));
    if (t.known) {
      var doc = view.docs[di];
      var unread = Object.keys(doc.facts).filter(function (k) { return !(k in t.known); });
      p.appendChild(el('p', 'known-here', 'facts read by this token: ' + factsText(t.known) + (unread.length ? ' · not read yet: ' + unread.join(', ') : '')));
      p.appendChild(el('p', 'muted', 'Each fact an explanation states (outside its quotations) is marked \u2713 when the text has stated that value by this token, \u2717 when it states another value or one not read yet.'));
    }

    p.appendChild(el('h2', null, 'Baselines at this token'));
    var bt = el('table', 'baselines');
    [['current token', 'token'], ['previous + current token', 'bigram'], ['mean activation (floor)', 'floor']].forEach(function (b) {
      var r = el('tr', 'baseline-' + b[1]);
      r.appendChild(el('td', null, b[0]));
      r.appendChild(el('td', 'num', f3(t.baselines[b[1]])));
      bt.appendChild(r);
    });
    p.appendChild(bt);
    var best = t.explanations[0];
    if (best && typeof t.baselines.token === 'number') {
      var gap = best.fve - t.baselines.token;
      p.appendChild(el('p', 'vs-token', 'best explanation ' + (gap >= 0 ? 'beats' : 'trails') + ' the current-token baseline by ' + Math.abs(gap).toFixed(3)));
    }
    p.appendChild(el('p', 'muted', 'FVE = 1 − MSE/Var of the AR\u2019s reconstruction from the text (1 = exact, 0 = no better than the mean activation). ' +
      'An explanation below the current-token baseline says less about this activation than the token itself.'));
  }

  // One small chart per training quantity (loss, FVE, reward, KL, length, logit scale, ...):
  // their scales differ too much to share an axis.
  function renderMetrics(metrics) {
    var sec = $('training');
    if (!metrics) { sec.hidden = true; return; }
    sec.hidden = false;
    $('metrics-file').textContent = metrics.file;
    var charts = $('charts');
    charts.textContent = '';
    metrics.curves.forEach(function (c) {
      Object.keys(c.series).forEach(function (k) {
        var box = el('div', 'chart');
        box.dataset.stage = c.stage; box.dataset.key = k;
        box.appendChild(el('div', 'title', c.stage + ': ' + k));
        charts.appendChild(box);
        if (typeof uPlot === 'function') {
          new uPlot({ width: 300, height: 150, legend: { show: false }, scales: { x: { time: false } }, axes: [{}, { size: 56 }],
            series: [{ label: 'step' }, { label: k, stroke: '#1a56db', width: 1.5, points: { show: c.steps.length < 30 } }] },
            [c.steps, c.series[k]], box);
        }
      });
    });
    var keys = [];
    metrics.evals.forEach(function (e) { Object.keys(e.values).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); }); });
    var t = el('table');
    var hr = el('tr'); hr.appendChild(el('th', null, 'field'));
    metrics.evals.forEach(function (e) { hr.appendChild(el('th', 'num', e.stage)); });
    t.appendChild(hr);
    keys.forEach(function (k) {
      var r = el('tr'); r.appendChild(el('td', null, k));
      metrics.evals.forEach(function (e) { r.appendChild(el('td', 'num', k in e.values ? String(+e.values[k].toPrecision(4)) : '')); });
      t.appendChild(r);
    });
    var ev = $('evals'); ev.textContent = '';
    if (metrics.evals.length) ev.appendChild(t); else ev.appendChild(el('p', 'muted', 'no evaluation lines in this file'));
  }

  // Serve mode: POST the text; the answer streams JSON lines (queued, progress, result or
  // error) so a long text shows its progress; a bad input is a non-200 answer with a message.
  function submit(ev) {
    ev.preventDefault();
    message('');
    var body = { text: $('vectors').value.trim() ? '' : $('text').value, vectors: $('vectors').value, facts: $('vectors').value.trim() ? '' : $('facts').value, samples: $('samples').value, temperature: $('temperature').value, seed: $('seed').value, nla: $('nla-dir').value };
    var btn = $('go'); btn.disabled = true;
    $('status').textContent = 'sending…';
    $('progress').hidden = false; $('progress').removeAttribute('value');
    fetch('api/explain', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(function (res) {
      if (!res.ok) {
        return res.json().then(function (j) { throw new Error(j.error || ('HTTP ' + res.status)); }, function () { throw new Error('HTTP ' + res.status); });
      }
      var reader = res.body.getReader(), dec = new TextDecoder(), buf = '';
      function line(l) {
        if (!l.trim()) return;
        var m = JSON.parse(l);
        if (m.type === 'queued') $('status').textContent = m.ahead ? 'waiting for the GPU: ' + m.ahead + ' request(s) ahead' : 'reading the activations…';
        else if (m.type === 'progress') { $('status').textContent = 'explaining: ' + m.done + ' / ' + m.total + (body.vectors.trim() ? ' vectors' : ' tokens'); $('progress').max = m.total; $('progress').value = m.done; }
        else if (m.type === 'result') { header(m.data.nla); renderDocs(m.data); renderMetrics(m.data.metrics); $('status').textContent = 'done: ' + (m.data.vectors ? m.data.vectors.rows.length + ' vectors' : m.data.docs[0].tokens.length + ' tokens'); }
        else if (m.type === 'error') throw new Error(m.error);
      }
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) { line(buf); return; }
          buf += dec.decode(r.value, { stream: true });
          var parts = buf.split('\n'); buf = parts.pop();
          parts.forEach(line);
          return pump();
        });
      }
      return pump();
    }).catch(function (e) {
      message(e.message); $('status').textContent = 'failed';
    }).then(function () { btn.disabled = false; $('progress').hidden = true; });
  }

  header(boot.nla);
  if (boot.error) message(boot.error);
  if (boot.mode === 'serve') {
    $('controls').hidden = false;
    $('nla-dir').value = boot.nla ? boot.nla.dir : (boot.nlaDir || '');
    $('form').addEventListener('submit', submit);
  }
  if (boot.data) renderDocs(boot.data);
  renderMetrics(boot.metrics || (boot.data && boot.data.metrics));
  document.body.dataset.ready = '1';
})();
`;
