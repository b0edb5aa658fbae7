// Probes per fact per layer on constructed activations with known content: a layer that encodes
// the name reads it, a noise layer reads chance, a layer that is a function of the current token
// is explained by the token lookup (wherever the token was seen in training); the train/test split
// is by story; cue cuts sit right before a recalled word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { FIELD_VALUES } from '../src/nla/corpus.js';
import { probeWorld, worldCuts } from '../src/nla/world-probe.js';
import { worldStory } from '../src/nla/world.js';
import { initGpu } from '../src/tensor/device.js';
import { gaussian, rng } from '../src/util/rng.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('probeWorld: reads a fact where the layer encodes it, chance where it does not; the token lookup explains a function of the token', { skip: SKIP_NO_MODEL, timeout: 300_000 }, async () => {
  await initGpu();
  const tok = loadTokenizer(modelFile('tok512.bin'));
  const { rows } = worldCuts(tok, 4, 120, 3, 30);
  const d = 16, n = rows.length;
  const noise = gaussian(rng(1));
  const names = FIELD_VALUES.name as readonly string[];
  const encoded = new Float32Array(n * d), random = new Float32Array(n * d), token = new Float32Array(n * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) {
      encoded[i * d + j] = 0.3 * noise() + (r.cut.known.name !== undefined && j === names.indexOf(r.cut.known.name) ? 3 : 0);
      random[i * d + j] = noise();
      token[i * d + j] = Math.sin((r.token + 1) * (j + 1)); // a fixed vector per token id
    }
  });
  const rep = await probeWorld([encoded, random, token], rows, d, { fields: ['name', 'place'] });
  assert.equal(rep.trainRows + rep.testRows, n);
  const trainStories = new Set(rows.slice(0, rep.trainRows).map((r) => r.story));
  assert.ok(rows.slice(rep.trainRows).every((r) => !trainStories.has(r.story)), 'split by story');
  assert.ok(rep.layers[0]!.probe.name!.acc > 0.95, `encoded name read ${rep.layers[0]!.probe.name!.acc}`);
  assert.ok(rep.layers[0]!.probe.place!.acc < 0.4, `place not encoded: ${rep.layers[0]!.probe.place!.acc}`);
  assert.ok(rep.layers[1]!.probe.name!.acc < 0.35, `noise reads chance: ${rep.layers[1]!.probe.name!.acc}`);
  // A token function is explained wherever the test token occurred in training (the rest fall
  // back to the global mean), and the bigram lookup backs off to it.
  assert.ok(rep.layers[2]!.fveToken > 0.75, `token function: token FVE ${rep.layers[2]!.fveToken}`);
  assert.ok(rep.layers[2]!.fveBigram >= rep.layers[2]!.fveToken - 0.05);
  assert.ok(rep.layers[1]!.fveToken < 0.2);
  assert.equal(rep.chance.name, 1 / 8);
});

test('worldCuts at cues: each cut is the token right before a recalled word, labelled with its field', { skip: SKIP_NO_MODEL }, () => {
  const tok = loadTokenizer(modelFile('tok512.bin'));
  const { rows, docs } = worldCuts(tok, 4, 20, 3, 10, {}, 'cue');
  assert.ok(rows.length >= 40);
  for (const r of rows) {
    const s = worldStory(4, r.story);
    const ids = docs[r.story]!;
    const next = tok.decode(ids.slice(0, r.cut.tokenIndex + 2)).length;
    const here = tok.decode(ids.slice(0, r.cut.tokenIndex + 1)).length;
    // The next token starts a recalled value: some recall mention begins inside it.
    const m = s.mentions.find((x) => x.recall && x.start >= here && x.start < next);
    assert.ok(m, `cut ${r.cut.tokenIndex} of story ${r.story}`);
    assert.equal(r.cued, m.field);
  }
});
