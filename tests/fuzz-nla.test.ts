// Fuzzed NLA-side readers: the activation store (manifest.json, raw shards, msgpack row
// metadata), training checkpoints (msgpack), reference sidecars (nla_meta.yaml) and datasets
// (parquet + sidecar), vector files (.npy, .jsonl) and metrics.jsonl. Same rule as
// tests/fuzz-io.test.ts: a mutated file reads cleanly or fails with an Error naming the file;
// named regression cases follow each group's properties.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { parse as parseYaml } from 'yaml';
import { ActivationStore, StoreWriter } from '../src/nla/store.js';
import { loadCheckpoint, saveCheckpoint } from '../src/nn/checkpoint.js';
import { readModelSidecar } from '../src/nla/reference-sidecar.js';
import { readReferenceDataset, writeBaseDataset } from '../src/nla/reference-dataset.js';
import { readJsonlVectors, readNpy } from '../src/nla/vectors.js';
import { Metrics } from '../src/cli/options.js';
import { readMeta } from '../src/cli/nla-dir.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { fcRuns } from '../src/testing/runs.js';
import { check, cleanRead, cleanReadOf, editJson, jsonEditsArb, mutate, mutationArb, rejectsNaming, Tally, toJsonText } from './fuzz.js';
import { sidecarYaml } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-fuzz-nla-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const enc = new TextEncoder();
let serial = 0;
const fresh = (ext: string) => path.join(tmp, `case-${serial++}${ext}`);

// A 7-row f16 store of width 4 in shards of 3 rows.
const STORE = path.join(tmp, 'store');
{
  const w = new StoreWriter(STORE, { model: { name: 'm', dim: 4, nLayers: 1 }, layer: 0, dtype: 'f16', d: 4 }, 3);
  for (let i = 0; i < 7; i++) w.add(Float32Array.from([1 + i, -2, 0.5, i / 7]), { doc: i >> 1, pos: 3 + i, token: 10 + i, prevToken: 9 + i, split: 'train', summary: `s${i}` });
  w.finish();
}
const storeFile = (f: string) => new Uint8Array(fs.readFileSync(path.join(STORE, f)));
const MANIFEST = JSON.parse(fs.readFileSync(path.join(STORE, 'manifest.json'), 'utf8'));

/** A copy of the store with `file` replaced by `bytes`; returns its directory. */
function storeWith(file: string, bytes: Uint8Array): string {
  const dir = path.join(tmp, `store-${serial++}`);
  fs.cpSync(STORE, dir, { recursive: true });
  fs.writeFileSync(path.join(dir, file), bytes);
  return dir;
}
const readStore = (dir: string) => ActivationStore.open(dir).readAll();

describe('fuzz: activation store', () => {
  test('manifest.json edits: clean read or an error naming the store file', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const text = toJsonText(editJson(MANIFEST, edits));
        const dir = storeWith('manifest.json', enc.encode(text));
        const o = await cleanRead(dir, 600, () => readStore(dir));
        t.add(o);
        if (o.ok) {
          const { h, meta } = o.value as ReturnType<typeof readStore>;
          assert.equal(h.length, meta.length * 4, 'rows and metadata agree');
        }
        fs.rmSync(dir, { recursive: true });
      }),
      { seed: 1410, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('shard and row-metadata byte mutations: clean read or an error naming the file', async () => {
    const shard = storeFile('shard-00000.f16'), meta = storeFile('shard-00000.meta.msgpack');
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.boolean(), fc.oneof(mutationArb(meta.length), mutationArb(24)), async (isMeta, muts) => {
        const [name, bytes] = isMeta ? ['shard-00000.meta.msgpack', meta] : ['shard-00000.f16', shard];
        const dir = storeWith(name, mutate(bytes, muts));
        const o = await cleanRead(path.join(dir, name), 600, () => readStore(dir));
        t.add(o);
        if (o.ok) for (const m of (o.value as ReturnType<typeof readStore>).meta) for (const k of ['doc', 'pos', 'token', 'prevToken'] as const) assert.ok(Number.isSafeInteger(m[k]) && m[k] >= (k === 'prevToken' ? -1 : 0), `${k}=${m[k]}`);
        fs.rmSync(dir, { recursive: true });
      }),
      { seed: 1411, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });
});

test('regressions (fuzz seeds 1410, 1411): malformed manifests and row metadata are named, never a TypeError or a read outside the store', async () => {
  const edited = (edit: (m: typeof MANIFEST) => void) => {
    const m = structuredClone(MANIFEST);
    edit(m);
    return storeWith('manifest.json', enc.encode(JSON.stringify(m)));
  };
  let dir = edited((m) => (m.shards[1] = null));
  await rejectsNaming(() => readStore(dir), path.join(dir, 'manifest.json'), 'shards[1]');
  dir = edited((m) => (m.shards[0].file = '../../../etc/passwd'));
  await rejectsNaming(() => readStore(dir), path.join(dir, 'manifest.json'), 'shards[0].file', 'a file name in the store directory');
  dir = edited((m) => (m.d = 2 ** 40));
  await rejectsNaming(() => readStore(dir), path.join(dir, 'manifest.json'), 'field "d"');
  dir = edited((m) => (m.shards[2].count = 5));
  await rejectsNaming(() => readStore(dir), path.join(dir, 'manifest.json'), 'the shards hold 11 rows');
  const meta = storeFile('shard-00000.meta.msgpack');
  dir = storeWith('shard-00000.meta.msgpack', Uint8Array.from([0, ...meta]));
  await rejectsNaming(() => readStore(dir), path.join(dir, 'shard-00000.meta.msgpack'), 'not readable msgpack');
  dir = storeWith('shard-00000.meta.msgpack', pack([{ doc: 0, pos: 1, token: -4, prevToken: 0 }, {}, {}]));
  await rejectsNaming(() => readStore(dir), path.join(dir, 'shard-00000.meta.msgpack'), '[0].token');
});

describe('fuzz: training checkpoints', () => {
  const file = path.join(tmp, 'valid.ckpt');
  saveCheckpoint(file, {
    step: 12,
    weights: { model: { a: { dtype: 'f32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, i: { dtype: 'i32', shape: [2], data: Int32Array.from([4, 5]) } } },
    optimizer: { model: { kind: 'adamw', step: 12 } },
    rngState: 77,
  });
  const CK = new Uint8Array(fs.readFileSync(file));

  // Format 2 checksums every byte (tensors, header, trailer): any change is refused, naming the
  // file. Header edits with a valid CRC and format 1 are fuzzed in tests/nn-checkpoint.test.ts.
  test('byte mutations: every changed file is refused with an error naming it', async () => {
    await check(
      fc.asyncProperty(mutationArb(CK.length), async (muts) => {
        const bytes = mutate(CK, muts);
        const o = await cleanReadOf(fresh('.ckpt'), bytes, loadCheckpoint);
        const same = bytes.length === CK.length && bytes.every((b, i) => b === CK[i]);
        assert.equal(o.ok, same, same ? 'the unchanged checkpoint must load' : 'a changed checkpoint loaded');
      }),
      { seed: 1412, numRuns: fcRuns(500) },
    );
  });
});

test('regression (fuzz seed 1412): a checkpoint whose fields have the wrong types is named, not a TypeError', async () => {
  const f = fresh('.ckpt');
  const bad = (body: unknown) => (fs.writeFileSync(f, pack(body)), () => loadCheckpoint(f));
  await rejectsNaming(bad({ format: 'nla-checkpoint/1', step: 3 }), f, 'field "weights"');
  await rejectsNaming(bad({ format: 'nla-checkpoint/1', step: 3, weights: { model: { a: { dtype: 'f64', shape: [1], data: new Uint8Array(8) } } } }), f, 'model/a', 'dtype');
  await rejectsNaming(bad({ format: 'nla-checkpoint/1', step: 3, weights: { model: { a: { dtype: 'f32', shape: [2], data: new Uint8Array(7) } } } }), f, 'model/a', 'for shape [2]');
  await rejectsNaming(bad({ format: 'nla-checkpoint/1', step: 3, weights: { model: { a: { dtype: 'f32', shape: [2], data: 'xxxxxxxx' } } } }), f, 'model/a', 'not bytes');
  await rejectsNaming(bad({ format: 'nla-checkpoint/1', step: -1, weights: {} }), f, 'field "step"');
});

describe('fuzz: reference sidecars and datasets', () => {
  const SIDECAR = parseYaml(sidecarYaml({ role: 'av', d: 4, injectionScale: 2, mseScale: null, char: '\u2603', injectionId: 257, left: 60, right: 47, suffix: null, K: 1 }));

  test('nla_meta.yaml edits: a sidecar or an error naming the file', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const text = toJsonText(editJson(SIDECAR, edits)); // JSON is YAML
        const o = await cleanReadOf(fresh('.yaml'), enc.encode(text), readModelSidecar);
        t.add(o);
      }),
      { seed: 1413, numRuns: fcRuns(150) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('nla_meta.yaml byte mutations (and YAML alias bombs): a sidecar or a named error', async () => {
    const text = enc.encode(sidecarYaml({ role: 'ar', d: 4, injectionScale: null, mseScale: 2, char: 'x', injectionId: 257, left: 60, right: 47, suffix: [1, 2] }));
    await check(
      fc.asyncProperty(mutationArb(text.length), async (muts) => {
        await cleanReadOf(fresh('.yaml'), mutate(text, muts), readModelSidecar);
      }),
      { seed: 1414, numRuns: fcRuns(300) },
    );
    const bomb = ['kind: nla_model', 'a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill('*' + String.fromCharCode(97 + i)).join(', ')}]`)].join('\n');
    await cleanReadOf(fresh('.yaml'), enc.encode(bomb), readModelSidecar);
  });

  const PARQUET = path.join(tmp, 'valid.parquet');
  writeBaseDataset(PARQUET, Array.from({ length: 5 }, (_, i) => ({ nRawTokens: i + 2, text: `text ${i}`, vector: Float32Array.from([i, -i, 0.5, 1]), layer: 1, docId: `d${i}` })),
    { baseModel: 'm', dModel: 4, layerIndex: 1, corpus: 'c', corpusSlice: { start: 0, length: 5 }, positionsPerDoc: 1 });
  const PQ = new Uint8Array(fs.readFileSync(PARQUET));
  const PQ_SIDECAR = parseYaml(fs.readFileSync(`${PARQUET}.nla_meta.yaml`, 'utf8'));

  test('parquet byte mutations: rows or an error naming the file, within a bounded size', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.oneof(mutationArb(PQ.length), mutationArb(64)), async (muts) => {
        const o = await cleanReadOf(fresh('.parquet'), mutate(PQ, muts), (f) => readReferenceDataset(f, { deadlineMs: 5000 }));
        t.add(o);
      }),
      { seed: 1415, numRuns: fcRuns(100) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('regression (fuzz seed 1415): a page header without its size loops hyparquet forever; the decode is stopped at the deadline, naming the file', async () => {
    const f = fresh('.parquet');
    fs.writeFileSync(f, mutate(PQ, [{ kind: 'insert', at: 19, bytes: [0, 32, 140, 32, 57, 0] }, { kind: 'overwrite', at: 55, bytes: [245, 125, 113, 234] }]));
    await rejectsNaming(() => readReferenceDataset(f, { deadlineMs: 3000 }), f, 'did not finish within 3.0 s');
    // The same reader, undamaged, still reads (the worker path returns the rows).
    const ok = await readReferenceDataset(PARQUET, { deadlineMs: 30_000 });
    assert.equal(ok.rows.length, 5);
    assert.deepEqual([...ok.vectors.subarray(4, 8)], [1, -1, 0.5, 1]);
  });

  test('a dataset sidecar nesting 5,000 deep is an error naming the sidecar, not a stack overflow', async () => {
    const f = fresh('.parquet');
    fs.writeFileSync(f, PQ);
    fs.writeFileSync(`${f}.nla_meta.yaml`, '['.repeat(5000) + ']'.repeat(5000));
    await rejectsNaming(() => readReferenceDataset(f, { deadlineMs: 30_000 }), `${f}.nla_meta.yaml`);
  });

  test('dataset sidecar edits: rows or an error naming the sidecar', async () => {
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const f = fresh('.parquet');
        fs.writeFileSync(f, PQ);
        fs.writeFileSync(`${f}.nla_meta.yaml`, toJsonText(editJson(PQ_SIDECAR, edits)));
        await cleanRead(f, PQ.length + 2000, () => readReferenceDataset(f));
      }),
      { seed: 1416, numRuns: fcRuns(40) },
    );
  });
});

/** An .npy file: magic, version 1.0, a header dict padded to 64 bytes, then the data. */
function npy(header: string, body: Uint8Array): Uint8Array {
  const padTo = Math.ceil((10 + header.length + 1) / 64) * 64;
  const h = header + ' '.repeat(padTo - 10 - header.length - 1) + '\n';
  const pre = Uint8Array.from([0x93, ...enc.encode('NUMPY'), 1, 0, h.length & 0xff, h.length >> 8]);
  const out = new Uint8Array(pre.length + h.length + body.length);
  out.set(pre);
  out.set(enc.encode(h), pre.length);
  out.set(body, pre.length + h.length);
  return out;
}

describe('fuzz: vector files', () => {
  const NPY = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", new Uint8Array(Float32Array.from({ length: 12 }, (_, i) => i - 5).buffer));
  const JSONL = enc.encode(['[1, 2, 3]', '{"vector": [4, 5, 6], "id": "x"}', '', '[7.5, -8, 9e-3]', ''].join('\n'));

  test('.npy byte mutations (anywhere, and in the header): vectors or a named error; the values read are the values stored', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.oneof(mutationArb(NPY.length), mutationArb(80)), async (muts) => {
        const o = await cleanReadOf(fresh('.npy'), mutate(NPY, muts), readNpy);
        t.add(o);
        if (o.ok) {
          const v = o.value as ReturnType<typeof readNpy>;
          assert.ok(Number.isSafeInteger(v.n) && v.n >= 0 && Number.isSafeInteger(v.d) && v.d >= 0, `n=${v.n} d=${v.d}`);
          assert.equal(v.data.length, v.n * v.d);
        }
      }),
      { seed: 1417, numRuns: fcRuns(500) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('.jsonl byte mutations: vectors or an error naming the file', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(mutationArb(JSONL.length), async (muts) => {
        const o = await cleanReadOf(fresh('.jsonl'), mutate(JSONL, muts), (f) => readJsonlVectors(f));
        t.add(o);
      }),
      { seed: 1418, numRuns: fcRuns(300) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });
});

describe('fuzz: nla.json', () => {
  const META = {
    format: 'nla/1',
    model: { name: 'stories260K', path: '/models/stories260K.bin', sha256: 'ab'.repeat(32), config: { arch: 'llama', dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 10, maxSeqLen: 16, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', tieEmbeddings: true, qkvBias: false, bosId: 1, eosId: 2 } },
    tokenizer: 'tokenizer.bin', layer: 1, alpha: 10, variance: 0.77, mean: [0, 0.1, 0, 0, 0, 0, 0, -0.1],
    prompts: DEFAULT_PROMPTS, placeholderId: 3, maxExplanationTokens: 12, created: '2026-01-01T00:00:00Z', training: { 'sft-ar': { steps: 3 } },
  };
  const metaIn = (text: string) => {
    const dir = path.join(tmp, `nla-${serial++}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'nla.json'), text);
    return dir;
  };

  test('edits: metadata that is whole and consistent, or an error naming nla.json and the field', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const dir = metaIn(toJsonText(editJson(META, edits)));
        const o = await cleanRead(path.join(dir, 'nla.json'), 2000, () => readMeta(dir));
        t.add(o);
      }),
      { seed: 1420, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('a tokenizer outside the directory, a context that would allocate gigabytes, a placeholder past the vocabulary: refused by name', async () => {
    for (const [edit, field] of [
      [(m: typeof META) => (m.tokenizer = '../../etc/passwd'), 'tokenizer'],
      [(m: typeof META) => (m.model.config.maxSeqLen = 2 ** 40), 'model.config.maxSeqLen'],
      [(m: typeof META) => (m.placeholderId = 10), 'placeholderId'],
      [(m: typeof META) => (m.mean = [1, 2]), 'mean'],
      [(m: typeof META) => (m.layer = 2), 'layer'],
    ] as const) {
      const m = structuredClone(META);
      edit(m);
      const dir = metaIn(JSON.stringify(m));
      await rejectsNaming(() => readMeta(dir), path.join(dir, 'nla.json'), `field "${field}"`);
    }
    assert.equal(readMeta(metaIn(JSON.stringify(META)))?.layer, 1, 'the unedited metadata reads');
  });
});

describe('fuzz: metrics.jsonl', () => {
  test('a mangled metrics file never stops a run: reopening keeps every line it cannot parse and drops only the stage redone', async () => {
    const lines = [{ stage: 'sft-ar', step: 0, loss: 1 }, { stage: 'sft-ar', step: 1, loss: 0.5 }, { stage: 'sft-av', step: 0 }, { stage: 'sft-ar-skip', step: 2 }].map((m) => JSON.stringify(m)).join('\n') + '\n';
    const bytes = enc.encode(lines);
    await check(
      fc.asyncProperty(mutationArb(bytes.length), fc.option(fc.integer({ min: 0, max: 3 })), async (muts, resume) => {
        const f = fresh('.jsonl');
        const o = await cleanReadOf(f, mutate(bytes, muts), () => Metrics.open(f, 'sft-ar', resume ?? undefined));
        assert.ok(o.ok, 'Metrics.open never throws on content');
        const kept = fs.readFileSync(f, 'utf8');
        assert.ok(kept === '' || kept.endsWith('\n'), 'what is kept ends in a whole line');
        // Every kept line of this stage is from before the resumed step (a fresh run keeps none).
        for (const line of kept.split('\n')) {
          let m: { stage?: unknown; step?: unknown };
          try {
            m = JSON.parse(line);
          } catch {
            continue;
          }
          if (m?.stage === 'sft-ar' && typeof m.step === 'number') assert.ok(resume !== null && m.step < resume, `kept ${line} (resume ${resume})`);
        }
      }),
      { seed: 1419, numRuns: fcRuns(200) },
    );
  });
});
