// `nla world`: the known-answer world of issue 11. `sample` prints stories with their facts,
// `train` trains world-M (a small Llama that must carry the facts to predict its recalls) and
// saves it as an ordinary model, `probe` measures what its activations hold per layer.
import * as path from 'node:path';
import type { Command } from 'commander';
import { FIELDS } from '../nla/corpus.js';
import { HELD_OUT_SEED_OFFSET, recallReport, worldOptionsOf, saveWorldModel, trainWorldModel, WORLD_DEFAULTS, WORLD_FILES, type RecallReport, type WorldTrainOptions } from '../nla/world-model.js';
import { allLayerActivations, probeWorld, worldCuts, type WorldProbeReport } from '../nla/world-probe.js';
import { checkWorldOptions, NEVER_RESTATED, RECALLED_FIELDS, worldStory } from '../nla/world.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { findModelFile } from '../io/model-files.js';
import { initGpu } from '../tensor/device.js';
import { checkLayer, loadStudied, Opts, progressBar, withConfig } from './options.js';
import { extractToStore } from '../nla/extract.js';
import { worldItems } from '../nla/world-data.js';

const WORLD_HELP = `
The world: each story states six facts once (name, place, object, colour, emotion, event),
tells fact-free distractor sentences, then recalls ${RECALLED_FIELDS.join(', ')} in a random
order ("Mom called Lily.", "It was fun at the park."). A recalled word can only be predicted
from the fact stated earlier. The ${NEVER_RESTATED.join(', ')} is never restated: nothing in
training asks the model to keep it. Values: those of the built-in corpus (8 names, 6 places,
8 objects, 6 colours, 4 emotions, 4 events), so the rest of nla scores explanations of world
stories like any known-answer story.`;

export function registerWorld(program: Command): void {
  const world = program
    .command('world')
    .description('the known-answer world (issue 11): sample stories, train world-M, probe what its activations hold')
    .addHelpText('after', WORLD_HELP);

  const sample = world
    .command('sample')
    .description('print world stories with their facts and where each is recalled')
    .option('--n <n>', 'stories', '2')
    .option('--seed <n>', 'seed (story i of a seed is always the same story)', '0')
    .option('--jsonl', 'print one {"text","facts","seed","story"} line per story instead: known-answer text for `nla report --data`, which marks each fact an explanation states true or false');
  withConfig(sample).action((_: unknown, c: Command) => {
    const o = Opts.of(c);
    const seed = o.int('seed');
    for (let i = 0; i < o.int('n', 1); i++) {
      const s = worldStory(seed, i);
      if (o.bool('jsonl')) {
        console.log(JSON.stringify({ text: s.text, facts: s.latents, seed, story: i }));
        continue;
      }
      console.log(`story ${i} of seed ${seed}: ${FIELDS.map((f) => `${f}=${s.latents[f]}`).join(' ')}`);
      console.log(`  ${s.text}`);
      console.log(`  recalls: ${s.mentions.filter((m) => m.recall).map((m) => `${m.field}@${m.start}`).join(' ')}\n`);
    }
  });

  const train = world
    .command('train')
    .description('train world-M from scratch and save it as an ordinary model (llama2.c .bin + tok512, and HF safetensors)')
    .option('--out <dir>', 'directory to write world-M into', 'runs/world-M')
    .option('--tokenizer <file>', 'tokenizer (default: tok512.bin, as stories260K, so NLA prompts stay comparable)')
    .option('--stories <n>', 'training stories', String(WORLD_DEFAULTS.stories))
    .option('--steps <n>', 'optimizer steps', String(WORLD_DEFAULTS.steps))
    .option('--batch-size <n>', 'stories per step', String(WORLD_DEFAULTS.batchSize))
    .option('--lr <x>', 'peak learning rate (AdamW, warm-up then cosine)', String(WORLD_DEFAULTS.lr))
    .option('--dim <n>', 'model width d', String(WORLD_DEFAULTS.dim))
    .option('--layers <n>', 'blocks', String(WORLD_DEFAULTS.layers))
    .option('--heads <n>', 'attention heads', String(WORLD_DEFAULTS.heads))
    .option('--seed <n>', 'seed of the stories and the initial weights', String(WORLD_DEFAULTS.seed))
    .option('--rounds <n>', 'rounds of recall per story (each recalls every recalled fact once)', String(WORLD_DEFAULTS.world?.rounds ?? 1))
    .option('--distractors <n>', 'fact-free sentences between the setup and the first recall', String(WORLD_DEFAULTS.world?.distractors?.[0] ?? 1))
    .option('--gap <n>', 'fact-free sentences between two recalls', String(WORLD_DEFAULTS.world?.gap?.[0] ?? 0))
    .option('--eval-stories <n>', 'held-out stories for the recall-token accuracy', '100')
    .option('--json', 'print only the JSON report line on stdout')
    .addHelpText(
      'after',
      `${WORLD_HELP}

Writes DIR/${WORLD_FILES.bin} with DIR/${WORLD_FILES.tokenizer} beside it (so --model DIR/${WORLD_FILES.bin}
finds its tokenizer), DIR/${WORLD_FILES.hf}/ (config.json + model.safetensors; pass --tokenizer
DIR/${WORLD_FILES.hf}/${WORLD_FILES.tokenizer}) and DIR/${WORLD_FILES.report} (settings, losses, scores).

Then it reports, on held-out stories (another seed), the recall-token accuracy: the share of
recalled words whose every token the model predicts (greedy, reading the true story), per field;
and for the first recall of each field, the same accuracy when the earlier mentions carried
another value ("control": the model has not seen the fact; chance = 1/values) and how often it
then writes that other value instead ("follows": it reads the fact from the context).

Examples:
  nla world train --out runs/world-M
  nla world train --out runs/world-tiny --dim 32 --layers 2 --steps 50   # a smoke test`,
    );
  withConfig(train).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const out = o.need('out');
    const tokFile = o.str('tokenizer') ?? findModelFile('tok512.bin');
    const tok = loadTokenizer(tokFile);
    const opts: WorldTrainOptions = {
      stories: o.int('stories', 1),
      seed: o.int('seed', 0),
      dim: o.int('dim', 2),
      layers: o.int('layers', 1),
      heads: o.int('heads', 1),
      steps: o.int('steps', 1),
      batchSize: o.int('batchSize', 1),
      lr: o.num('lr', { min: 0 }),
      world: checkWorldOptions({ ...WORLD_DEFAULTS.world, rounds: o.int('rounds', 1), distractors: [o.int('distractors', 0), o.int('distractors', 0)], gap: [o.int('gap', 0), o.int('gap', 0)] }, 'nla world train (--rounds, --distractors, --gap)'),
    };
    await initGpu();
    const bar = progressBar('train world-M', opts.steps);
    const t0 = performance.now();
    const { model, seconds, losses } = await trainWorldModel(tok, opts, (m) => bar.update(m.step, `loss ${m.loss.toFixed(3)}  ${m.tokensPerSec.toFixed(0)} tok/s`));
    bar.done();
    const evalN = o.int('evalStories', 1);
    const ebar = lazyBar('recall eval');
    const recall = await recallReport(model, tok, opts.seed + HELD_OUT_SEED_OFFSET, evalN, opts.world, ebar.update);
    ebar.done();
    const report = { world: 'M', out: path.resolve(out), config: model.cfg, train: opts, train_seconds: seconds, final_loss: losses.at(-1)?.loss, recall, minutes: (performance.now() - t0) / 60000 };
    await saveWorldModel(model, tokFile, out, report);
    if (!o.bool('json')) printRecall(recall, seconds, out);
    console.log(JSON.stringify({ world: 'M', out: path.resolve(out), train_seconds: seconds, final_loss: report.final_loss, recall_acc: recall.pooled, first_seen: recall.seen, first_control: recall.control, recall: recall.recall, first: recall.first }));
    model.w.dispose();
  });

  const extract = world
    .command('extract')
    .description('extract layer-K activations of world stories into an activation store (then sft-ar, sft-av, rl, eval, faithfulness as usual)')
    .option('--model <path>', 'world-M (DIR/world-M.bin) (required)')
    .option('--tokenizer <file>', 'tokenizer (default: beside the model)')
    .option('--layer <k>', 'layer K = the output of block K (required)')
    .option('--out <dir>', 'the activation store directory to write (required)')
    .option('--stories <n>', 'world stories, split by story av/ar/rl/eval 35/35/15/15%', '1200')
    .option('--cuts <n>', 'cut positions per story', '4')
    .option('--min-tokens <n>', 'cut only at token index >= this', '30')
    .option('--at <rule>', 'random: random tokens; cue: the token just before a recalled word (where world-M holds the fact)', 'random')
    .option('--seed <n>', 'seed of the stories (default: a held-out seed, never a training story of world-M seed 0)', String(3 * HELD_OUT_SEED_OFFSET))
    .addHelpText(
      'after',
      `
Like \`nla extract\` with the built-in stories, on world stories: each row carries the summary
(the words just read, the facts read so far, the next word) and the truth at its cut.

Example:
  nla world extract --model runs/world-M/world-M.bin --layer 2 --out runs/w/activations`,
    );
  withConfig(extract).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { loaded, M, tok } = await loadStudied(o.need('model'), o.str('tokenizer'), { llamaOnly: true });
    const layer = o.int('layer');
    checkLayer(layer, M.cfg.nLayers, loaded.name);
    const items = worldItems(tok, { stories: o.int('stories', 4), cutsPerStory: o.int('cuts', 1), minTokens: o.int('minTokens', 0), seed: o.int('seed'), world: worldOptionsOf(loaded.source), at: o.oneOf('at', ['random', 'cue'] as const) });
    const bar = progressBar('extract', items.length);
    const man = await extractToStore(M, layer, items, o.need('out'), { modelName: loaded.name, sha256: loaded.sha256 }, (d) => bar.update(d));
    bar.done();
    console.log(`${o.need('out')}: ${man.count} rows of ${items.length} world stories at layer ${layer} of ${loaded.name}`);
    M.w.dispose();
  });

  const probe = world
    .command('probe')
    .description('what world-M\'s activations hold: a linear probe per fact per layer, and token/bigram FVE baselines per layer')
    .option('--model <path>', 'world-M (DIR/world-M.bin or its hf directory) or any Llama (required)')
    .option('--tokenizer <file>', 'tokenizer (default: beside the model)')
    .option('--stories <n>', 'held-out world stories to cut (70% train the probes, 30% test them, split by story)', '600')
    .option('--cuts <n>', 'cut positions per story', '4')
    .option('--min-tokens <n>', 'cut only at token index >= this', '30')
    .option('--at <rule>', 'random: random tokens (as the NLA data is cut); cue: the token just before a recalled word', 'random')
    .option('--seed <n>', 'seed of the stories (default: a held-out seed, never a training story of world-M seed 0)', String(2 * HELD_OUT_SEED_OFFSET))
    .option('--json', 'print only the JSON line')
    .addHelpText(
      'after',
      `
For every layer K (the output of block K), at random cut points of world stories, where the fact
has already been read: held-out accuracy of a multinomial logistic probe on the activation
(chance = 1/values), and the FVE of the current-token and (previous, current)-token lookups and
of the best constant direction. The probe at layer K is the ceiling of what an NLA at layer K
can state; the bigram FVE is the floor its reconstruction has to beat.

Example:
  nla world probe --model runs/world-M/world-M.bin`,
    );
  withConfig(probe).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { loaded, M, tok } = await loadStudied(o.need('model'), o.str('tokenizer'), { llamaOnly: true });
    const { rows, docs } = worldCuts(tok, o.int('seed'), o.int('stories', 2), o.int('cuts', 1), o.int('minTokens', 0), worldOptionsOf(loaded.source), o.oneOf('at', ['random', 'cue'] as const));
    const ebar = lazyBar('activations');
    const layers = await allLayerActivations(M, docs, rows, ebar.update);
    ebar.done();
    const pbar = progressBar('probes', M.cfg.nLayers);
    const r = await probeWorld(layers, rows, M.cfg.dim, { onLayer: (l) => pbar.update(l.layer + 1) });
    pbar.done();
    if (!o.bool('json')) printProbe(r, loaded.name);
    console.log(JSON.stringify({ world_probe: loaded.name, ...r }));
    M.w.dispose();
  });
}

/** A progress bar whose total is known at the first update. */
function lazyBar(label: string): { update: (done: number, total: number) => void; done: () => void } {
  let bar: ReturnType<typeof progressBar> | undefined;
  return {
    update: (done, total) => (bar ??= progressBar(label, total)).update(done),
    done: () => bar?.done(),
  };
}

function printRecall(r: RecallReport, seconds: number, out: string): void {
  console.log(`world-M saved in ${out} (trained ${(seconds / 60).toFixed(1)} min)`);
  console.log(`recall-token accuracy on ${r.stories} held-out stories (every token of the recalled word, greedy):`);
  console.log('  field    all recalls   first recall: seen  control  follows  chance');
  for (const f of RECALLED_FIELDS) {
    const a = r.recall[f], b = r.first[f];
    if (!a || !b) continue;
    console.log(`  ${f.padEnd(8)} ${a.acc.toFixed(3).padStart(11)}   ${b.seen.toFixed(3).padStart(18)}  ${b.control.toFixed(3).padStart(7)}  ${b.follows.toFixed(3).padStart(7)}  ${b.chance.toFixed(3).padStart(6)}`);
  }
  console.log(`  pooled   ${r.pooled.toFixed(3).padStart(11)}   ${r.seen.toFixed(3).padStart(18)}  ${r.control.toFixed(3).padStart(7)}`);
  console.log('seen: the true story; control: earlier mentions carried another value (the model has not seen the fact); follows: it wrote that other value.');
}

function printProbe(r: WorldProbeReport, name: string): void {
  const fields = Object.keys(r.chance);
  console.log(`${name}: probes on ${r.trainRows} train / ${r.testRows} test rows (split by story)`);
  console.log(`  layer  ${fields.map((f) => f.padStart(8)).join('')}   fve_token fve_bigram fve_floor`);
  console.log(`  chance ${fields.map((f) => r.chance[f]!.toFixed(3).padStart(8)).join('')}`);
  for (const l of r.layers) {
    console.log(`  ${String(l.layer).padStart(5)}  ${fields.map((f) => (l.probe[f] ? l.probe[f]!.acc.toFixed(3) : '-').padStart(8)).join('')}   ${l.fveToken.toFixed(3).padStart(9)} ${l.fveBigram.toFixed(3).padStart(10)} ${l.fveFloor.toFixed(3).padStart(9)}`);
  }
  if (r.layers.some((l) => l.probeCued)) {
    console.log('  cued: each fact probed only where its own recalled word comes next');
    for (const l of r.layers) console.log(`  ${String(l.layer).padStart(5)}  ${fields.map((f) => (l.probeCued?.[f] ? l.probeCued[f]!.acc.toFixed(3) : '-').padStart(8)).join('')}`);
  }
}
