// tok512.bin written as a tokenizer.json (llama2c-hf-tokenizer.ts) encodes like run.c's
// encode: on stories and on random text (fast-check), through nla's tokenizer.json reader.
// The documented differences are asserted too: a text starting with a space or the marker
// gets one dummy-prefix "▁" less unless written after "<s> " (as the exported chat template does);
// "<s>", "</s>", "<unk>" written in text are special tokens here, characters for run.c.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { llama2cToHfTokenizer } from '../src/io/llama2c-hf-tokenizer.js';
import { HfTokenizer } from '../src/io/tokenizer-hf.js';
import { Llama2cTokenizer } from '../src/io/tokenizer-llama2c.js';
import { modelFile, PUBLISHED_OUTPUT, SKIP_NO_MODEL } from './helpers.js';

const load = () => {
  const l2c = Llama2cTokenizer.fromFile(modelFile('tok512.bin'));
  const { tokenizer, singleId } = llama2cToHfTokenizer(l2c, { single: '\u007f' });
  const hf = new HfTokenizer(tokenizer, 'tokenizer.json', {}, { bos_token: '<s>', eos_token: '</s>' });
  return { l2c, hf, singleId, tokenizer };
};

test('tokenizer.json from tok512 encodes and decodes as the llama2.c tokenizer', { skip: SKIP_NO_MODEL }, () => {
  const { l2c, hf, singleId } = load();
  assert.deepEqual([hf.bosId, hf.eosId, hf.vocabSize, singleId], [1, 2, 512, 130]);
  assert.deepEqual(hf.encode('\u007f'), [130], 'the marker alone is exactly its id (the reference loader requires it)');
  assert.deepEqual(l2c.encode('\u007f'), [l2c.tokenToId(' ')!, 130], 'run.c gives it the dummy-prefix space');
  for (const line of PUBLISHED_OUTPUT.split('\n')) {
    assert.deepEqual(hf.encode(line, { bos: true }), l2c.encode(line, { bos: true }), line);
    assert.equal(hf.decode(hf.encode(line, { bos: true })), l2c.decode(l2c.encode(line, { bos: true })));
  }
  const alphabet = fc.constantFrom(...'abcdeLTsh .,!?\n\'"-', 'é', '日', '\u007f', ' the', 'ing', ' was', '<', '>', '/', '<concept>', '</explanation>');
  const text = fc.array(alphabet, { maxLength: 40 }).map((a) => a.join(''));
  fc.assert(
    fc.property(text, (s) => {
      fc.pre(!/<\/?s>|<unk>/.test(s)); // specials written as text: tokenizer.json matches them as tokens (as the Hub's Llama-2 files do)
      const want = l2c.encode(s, { bos: true });
      // The form the exported chat template produces: "<s>" + " " + text, no specials added.
      if (s.length > 0) assert.deepEqual(hf.encode('<s> ' + s), want, JSON.stringify(s));
      if (!/^[ \u007f]/.test(s)) assert.deepEqual(hf.encode(s, { bos: true }), want, JSON.stringify(s));
      else assert.deepEqual(hf.encode(s, { bos: true }), [1, ...want.slice(2)], `one dummy-prefix piece less for ${JSON.stringify(s)}`);
      const gen = want.slice(1);
      for (let i = 1; i < gen.length; i++) assert.equal(hf.decodeToken(gen[i - 1], gen[i]), l2c.decodeToken(gen[i - 1], gen[i]));
    }),
    { numRuns: 300, seed: 12 },
  );
});

test('a marker that takes part in merges cannot become an added token, and says so', { skip: SKIP_NO_MODEL }, () => {
  const l2c = Llama2cTokenizer.fromFile(modelFile('tok512.bin'));
  assert.throws(() => llama2cToHfTokenizer(l2c, { single: 'e' }), /"e" \(id \d+\) takes part in merges/);
  assert.throws(() => llama2cToHfTokenizer(l2c, { single: 'ab' }), /must be one character/);
});
