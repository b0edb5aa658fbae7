// What the AV's and AR's prompts cost in the warm starts: nla's DEFAULT_PROMPTS (44 and 20
// tokens under tok512, which spells most of them letter by letter) against COMPACT_PROMPTS (the
// same tags in 22 and 9), the stories demo's default. One process alternates blocks of AV and AR
// warm-start steps (sft.ts, batch 32, as the demo) of the two on the same rows: stories260K's
// layer-3 activations at cut points of the built-in known-answer stories and their summaries,
// or with --store DIR the first --rows rows of that store's av split (a demo's store: half its
// rows are samples of M, whose summaries are shorter).
//
// Run: npm run bench -- prompts [--rounds 3] [--steps 15] [--stories 300] [--store DIR --rows 2000]
import { knownAnswerItems } from '../src/nla/dataset.js';
import { ActivationStore } from '../src/nla/store.js';
import { rowsOf } from '../src/nla/sft.js';
import { extractActivations } from '../src/nla/extract.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { avPrompt, COMPACT_PROMPTS, DEFAULT_PROMPTS, type PromptSpec } from '../src/nla/prompts.js';
import { trainArSft, trainAvSft } from '../src/nla/sft.js';
import { findModelFile } from '../src/io/model-files.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { argCount, argStr, emitter, machineLine, round, summarize } from './common.js';

export async function run(args: string[]): Promise<void> {
  const { emit } = emitter();
  const rounds = argCount(args, 'rounds', 3), steps = argCount(args, 'steps', 15), stories = argCount(args, 'stories', 300);
  const file = findModelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const storeDir = argStr(args, 'store');
  let data: { h: Float32Array; texts: string[] }, rowsFrom: string;
  if (storeDir) {
    const store = ActivationStore.open(storeDir, { layer: 3, d: M.cfg.dim });
    const all = store.readAll();
    const idx = all.meta.map((m, i) => (m.split === 'av' && m.summary ? i : -1)).filter((i) => i >= 0).slice(0, argCount(args, 'rows', 2000));
    data = { h: rowsOf(all.h, M.cfg.dim, idx), texts: idx.map((i) => all.meta[i]!.summary!) };
    rowsFrom = `${idx.length} av rows of ${storeDir}`;
  } else {
    const items = knownAnswerItems(tok, { stories, cutsPerStory: 4, minTokens: 30, seed: 0 });
    data = { h: await extractActivations(M, 3, items), texts: items.flatMap((it) => it.meta.map((m) => m.summary!)) };
    rowsFrom = `${data.texts.length} rows of ${stories} stories`;
  }
  const texts = data.texts;
  const sides: Record<string, PromptSpec> = { tagged: DEFAULT_PROMPTS, compact: COMPACT_PROMPTS };
  const nets = Object.fromEntries(
    await Promise.all(Object.entries(sides).map(async ([k, p]) => [k, { av: new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, p, 8), ar: await Reconstructor.fromModel(M, 3, tok, p) }] as const)),
  );
  const times: Record<string, { av: number[]; ar: number[] }> = { tagged: { av: [], ar: [] }, compact: { av: [], ar: [] } };
  const o = (seed: number) => ({ steps, batchSize: 32, lr: 1e-3, seed, warmup: 1, decaySteps: steps, clip: 1 });
  // Round 0 warms up (kernel compiles, the GPU wait's estimates) and is not counted.
  for (let r = 0; r <= rounds; r++) {
    for (const k of Object.keys(sides)) {
      let t0 = performance.now();
      await trainAvSft(nets[k]!.av, data, o(r));
      if (r > 0) times[k]!.av.push((performance.now() - t0) / steps);
      t0 = performance.now();
      await trainArSft(nets[k]!.ar, data, o(r));
      if (r > 0) times[k]!.ar.push((performance.now() - t0) / steps);
    }
  }
  console.log(`# ${machineLine()}; ${rowsFrom}; ${rounds} rounds of ${steps} steps per side, alternating`);
  const med: Record<string, { av: number; ar: number }> = {};
  for (const [k, p] of Object.entries(sides)) {
    const av = summarize(times[k]!.av), ar = summarize(times[k]!.ar);
    med[k] = { av: av.median, ar: ar.median };
    const tokens = { av: avPrompt(tok, p).ids.length, ar: tok.encode(p.ar.replace('{explanation}', ''), { bos: true }).length };
    emit({ bench: 'prompts', prompts: k, rows: rowsFrom, av_prompt_tokens: tokens.av, ar_prompt_tokens: tokens.ar, steps, rounds, av_ms_per_step: round(av.median, 1), av_ms_min: round(av.min, 1), av_ms_max: round(av.max, 1), ar_ms_per_step: round(ar.median, 1), ar_ms_min: round(ar.min, 1), ar_ms_max: round(ar.max, 1) });
    console.log(`# ${k.padEnd(8)} prompts ${tokens.av} + ${tokens.ar} tokens: AV ${av.median.toFixed(1)} ms/step [${av.min.toFixed(1)} - ${av.max.toFixed(1)}], AR ${ar.median.toFixed(1)} [${ar.min.toFixed(1)} - ${ar.max.toFixed(1)}]`);
  }
  const ratio = { av: med.compact!.av / med.tagged!.av, ar: med.compact!.ar / med.tagged!.ar };
  emit({ bench: 'prompts', prompts: 'ratio', av_compact_over_tagged: round(ratio.av, 3), ar_compact_over_tagged: round(ratio.ar, 3) });
  console.log(`# compact / tagged: AV ${ratio.av.toFixed(3)}, AR ${ratio.ar.toFixed(3)}`);
  for (const n of Object.values(nets)) {
    n.av.model.w.dispose();
    n.ar.model.w.dispose();
  }
}
