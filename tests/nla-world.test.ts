// The known-answer world (issue 11): every fact is stated before it is recalled, recalled facts
// come back after distractors, the emotion never does, no story names another story's values,
// stories are reproducible one by one, and a control changes exactly the earlier mentions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeCut, FIELD_VALUES, FIELDS, forms, mentions, type Field } from '../src/nla/corpus.js';
import { controlStory, generateWorldStories, isGirl, NEVER_RESTATED, otherValue, RECALLED_FIELDS, worldStory } from '../src/nla/world.js';
import { rng } from '../src/util/rng.js';

const stories = generateWorldStories(300, 5);

test('world stories: each fact stated once in the setup; recalled fields come back after a distractor; the emotion never does', () => {
  assert.deepEqual([...NEVER_RESTATED], ['emotion']);
  for (const s of stories) {
    for (const f of FIELDS) assert.ok(s.spans.some((sp) => sp.field === f), `field ${f} stated`);
    // The setup ends with the sentence of the last first mention (the event's).
    const setupEnd = s.text.indexOf('.', Math.max(...s.spans.map((sp) => sp.end))) + 1;
    const emotion = s.mentions.filter((m) => m.field === 'emotion');
    assert.equal(emotion.length, 1);
    assert.equal(emotion[0]!.recall, false);
    for (const f of RECALLED_FIELDS) {
      const recalls = s.mentions.filter((m) => m.field === f && m.recall && m.start > setupEnd);
      assert.ok(recalls.length >= 1, `${f} recalled after the setup in ${s.text}`);
      for (const m of recalls) assert.equal(s.text.slice(m.start, m.end), s.latents[f]);
    }
    // At least one distractor sentence between the setup and the first recall sentence.
    const firstRecall = Math.min(...s.mentions.filter((m) => m.start > setupEnd).map((m) => m.start));
    const between = s.text.slice(setupEnd, firstRecall);
    assert.ok(between.split('.').length >= 2, `distractor before the first recall: ${JSON.stringify(between)}`);
    assert.ok(!s.mentions.some((m) => m.start > setupEnd && !m.recall));
  }
});

test('world stories: no value of any field appears except the story\'s own', () => {
  for (const s of stories) {
    for (const f of FIELDS) {
      for (const v of FIELD_VALUES[f]) {
        const said = forms(f, v).some((w) => mentions(s.text, w, f === 'name'));
        assert.equal(said, v === s.latents[f], `${f}=${v} in "${s.text}"`);
      }
    }
  }
});

test('world stories: story i of a seed is the same alone or in a batch; values are spread over the choices', () => {
  assert.deepEqual(worldStory(5, 17), stories[17]);
  assert.notEqual(worldStory(6, 17).text, stories[17]!.text);
  for (const f of FIELDS) {
    const seen = new Set(stories.map((s) => s.latents[f]));
    assert.equal(seen.size, FIELD_VALUES[f].length, `every ${f} value occurs`);
  }
  const lengths = stories.map((s) => s.text.length);
  assert.ok(Math.max(...lengths) < 600, `stories stay short (${Math.max(...lengths)} chars)`);
});

test('controlStory: the mentions before the first recall carry the other value; the recall and the rest are unchanged', () => {
  const r = rng(3);
  for (let i = 0; i < 40; i++) {
    for (const f of RECALLED_FIELDS as Field[]) {
      const s = worldStory(9, i);
      const other = otherValue(f, s.latents[f], r);
      assert.notEqual(other, s.latents[f]);
      if (f === 'name') assert.equal(isGirl(other), isGirl(s.latents.name));
      const { story, control, recall } = controlStory(9, i, f, other);
      assert.deepEqual(story, s);
      const m = control.mentions[recall]!;
      assert.equal(m.field, f);
      assert.equal(m.recall, true);
      assert.equal(control.text.slice(m.start, m.end), s.latents[f]);
      control.mentions.slice(0, recall).forEach((c) => assert.equal(control.text.slice(c.start, c.end), c.field === f ? other : s.latents[c.field]));
      // Everything from the recall on reads the same as in the story.
      assert.equal(control.text.slice(m.start), s.text.slice(s.mentions[recall]!.start));
    }
  }
});

test('describeCut works on world stories: facts known once read', () => {
  const s = stories[0]!;
  const name = s.spans.find((sp) => sp.field === 'name')!;
  assert.equal(describeCut(s, name.start).known.name, undefined);
  const all = describeCut(s, s.text.length);
  for (const f of FIELDS) assert.equal(all.known[f], s.latents[f]);
  assert.ok(all.summary.includes(s.latents.name));
});
