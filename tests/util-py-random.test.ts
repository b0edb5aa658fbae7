// PyRandom against CPython's random module: the vectors below were printed by CPython 3
// (random.Random(42): getrandbits(32) x3; shuffle of range(10), range(1000), and of sorted
// string ids), so the reference's dataset split can be reproduced id for id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PyRandom } from '../src/util/py-random.js';

test('PyRandom(42) draws what CPython\'s random.Random(42) draws', () => {
  const r = new PyRandom(42);
  assert.deepEqual([r.getrandbits(32), r.getrandbits(32), r.getrandbits(32)], [2746317213, 478163327, 107420369]);
  assert.deepEqual(new PyRandom(42).shuffle([...Array(10).keys()]), [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]);
  const big = new PyRandom(42).shuffle([...Array(1000).keys()]);
  assert.deepEqual([big.slice(0, 12), big.slice(-5)], [[776, 507, 895, 922, 33, 483, 85, 750, 354, 523, 184, 809], [281, 759, 25, 114, 654]]);
  const ids = [...Array(7).keys()].map((i) => `known-answer:av:${i}`).sort();
  assert.deepEqual(new PyRandom(42).shuffle(ids), ['known-answer:av:1', 'known-answer:av:3', 'known-answer:av:4', 'known-answer:av:2', 'known-answer:av:6', 'known-answer:av:0', 'known-answer:av:5']);
});

test('PyRandom seeds above 2^32 use two key words, as CPython does', () => {
  // python3 -c "import random; print(random.Random(2**40+7).getrandbits(32))"
  assert.equal(new PyRandom(2 ** 40 + 7).getrandbits(32), 2635837658);
});
