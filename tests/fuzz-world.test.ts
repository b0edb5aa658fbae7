// Fuzzed world.json, the one file of world-M's directory that is not a model file (world-M.bin,
// tok512.bin and hf/config.json go through the readers tests/fuzz-io.test.ts fuzzes). `nla world
// extract`, `nla world probe` and `nla demo --world` read its "train.world" (how stories are cut)
// and "recall" (scores). A mutated file must read as exactly what it says, with options that
// build a story at once, or fail with an Error naming the file; never a story loop of 10^9
// rounds, a hang or a crash.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { readWorldReport, WORLD_DEFAULTS, WORLD_FILES, worldOptionsOf } from '../src/nla/world-model.js';
import { loadOrTrainWorldModel } from '../src/nla/demo-world.js';
import { checkWorldOptions, WORLD_LIMIT, worldStory } from '../src/nla/world.js';
import { fcRuns } from '../src/testing/runs.js';
import { check, cleanReadOf, editJson, jsonEditsArb, mutate, mutationArb, rejectsNaming, Tally, toJsonText } from './fuzz.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-fuzz-world-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let serial = 0;
const freshDir = () => {
  const d = path.join(tmp, `case-${serial++}`);
  fs.mkdirSync(d);
  return d;
};

// world.json as saveWorldModel writes it (demo-world.ts / cli/world.ts).
const REPORT = {
  world: 'M', out: '/runs/world-M', config: { arch: 'llama', dim: 128, nLayers: 3, nHeads: 4, vocabSize: 512, maxSeqLen: 160 },
  train: { ...WORLD_DEFAULTS, world: { rounds: 3, distractors: [1, 2], gap: [0, 1] } }, train_seconds: 812.5, final_loss: 0.91,
  recall: { pooled: 0.93, seen: 0.97, control: 0.31, first: { color: { n: 50, hit: 48 } } }, minutes: 14.2,
};

/** Read world.json the ways nla does, and check what came back against the file's own text. */
function readBoth(dir: string, text: string) {
  const file = path.join(dir, WORLD_FILES.report);
  const r = readWorldReport(file);
  assert.deepEqual(worldOptionsOf(path.join(dir, WORLD_FILES.bin)), r.world, 'worldOptionsOf reads the same options');
  // A clean read is exactly the file's values (defaults where it has none).
  const j = JSON.parse(text);
  const w = j.train?.world ?? {};
  assert.deepEqual(r.world, Object.fromEntries(['rounds', 'distractors', 'gap'].filter((k) => w[k] !== undefined).map((k) => [k, w[k]])));
  for (const k of ['pooled', 'seen', 'control'] as const) assert.equal(r.recall[k], j.recall?.[k]);
  // And the options build a bounded story at once.
  const t0 = performance.now();
  const s = worldStory(7, 3, r.world);
  assert.ok(s.text.length < 200_000 && performance.now() - t0 < 2000, `story of ${s.text.length} characters`);
  return r;
}

describe('fuzz: world.json', () => {
  test('edits (train.world counts, ranges, types; recall scores; structure): the file\'s own values with a bounded story, or an error naming the file', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const dir = freshDir();
        const text = toJsonText(editJson(REPORT, edits));
        t.add(await cleanReadOf(path.join(dir, WORLD_FILES.report), new TextEncoder().encode(text), () => readBoth(dir, text)));
      }),
      { seed: 1450, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('byte mutations (truncations, flips, inserted digits and brackets): the file\'s own values or a named error', async () => {
    const t = new Tally();
    const bytes = new TextEncoder().encode(JSON.stringify(REPORT, null, 2) + '\n');
    await check(
      fc.asyncProperty(mutationArb(bytes.length), async (muts) => {
        const dir = freshDir();
        const b = mutate(bytes, muts);
        t.add(await cleanReadOf(path.join(dir, WORLD_FILES.report), b, () => readBoth(dir, new TextDecoder().decode(b))));
      }),
      { seed: 1451, numRuns: fcRuns(300) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });
});

test('named: rounds of 10^9, a fraction, a reversed range, scores that are not accuracies, a huge file: refused by file and field; the demo\'s reuse path too', async () => {
  const write = (edit: (r: typeof REPORT & Record<string, unknown>) => void) => {
    const dir = freshDir(), r = structuredClone(REPORT) as typeof REPORT & Record<string, unknown>;
    edit(r);
    fs.writeFileSync(path.join(dir, WORLD_FILES.report), JSON.stringify(r));
    return path.join(dir, WORLD_FILES.report);
  };
  let f = write((r) => (r.train.world.rounds = 1e9));
  // Unchecked, plan() would loop 10^9 rounds and build a story of gigabytes.
  await rejectsNaming(() => worldOptionsOf(f), f, 'train.world.rounds', `1..${WORLD_LIMIT}`, '1000000000');
  f = write((r) => (r.train.world.distractors = [0.5, 2]));
  await rejectsNaming(() => readWorldReport(f), f, 'train.world.distractors[0]');
  f = write((r) => (r.train.world.gap = [3, 1]));
  await rejectsNaming(() => readWorldReport(f), f, 'train.world.gap', 'min above max');
  f = write((r) => ((r.train as Record<string, unknown>).world = 'three rounds'));
  await rejectsNaming(() => readWorldReport(f), f, 'train.world', 'expected an object');
  f = write((r) => ((r.recall as Record<string, unknown>).pooled = '93%'));
  await rejectsNaming(() => readWorldReport(f), f, 'recall.pooled');
  f = write((r) => ((r as Record<string, unknown>).train = null));
  await rejectsNaming(() => readWorldReport(f), f, 'field "train"');
  const deep = path.join(freshDir(), WORLD_FILES.report);
  fs.writeFileSync(deep, '{"train":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}');
  await rejectsNaming(() => readWorldReport(deep), deep, 'nests deeper');
  const big = path.join(freshDir(), WORLD_FILES.report);
  fs.writeFileSync(big, Buffer.alloc((16 << 20) + 1, 0x20));
  await rejectsNaming(() => readWorldReport(big), big, 'bytes, more than');
  // nla demo --world reusing a saved world-M reads the same checked report.
  f = write((r) => ((r.recall as Record<string, unknown>).seen = 7));
  const dir = path.dirname(f);
  fs.writeFileSync(path.join(dir, WORLD_FILES.bin), 'not read before the report');
  await rejectsNaming(() => loadOrTrainWorldModel({ worldModel: dir, tokenizer: 'unused', train: WORLD_DEFAULTS, recallStories: 1 }, () => {}), f, 'recall.seen');
  // The command line's counts go through the same check.
  assert.throws(() => checkWorldOptions({ rounds: 0 }, 'nla world train (--rounds, --distractors, --gap)'), /nla world train \(--rounds, --distractors, --gap\): field "world\.rounds": expected an integer 1\.\.100, found 0/);
  // The file nla writes reads back as written.
  f = write(() => {});
  assert.deepEqual(readWorldReport(f), { world: REPORT.train.world, recall: { pooled: 0.93, seen: 0.97, control: 0.31 } });
});
