// The known-answer world (issue 11): stories in which later tokens can only be predicted from
// facts stated earlier, so a model trained on them (world-M) must carry the facts. Each story
// states its six latent facts (corpus.ts FIELD_VALUES: name, place, object, colour, emotion,
// event) once in a setup, then tells fact-free distractor sentences, and recalls name, place,
// object, colour and event in recall sentences at random points after the distractors. The
// emotion is stated once and never again: a fact the model has no reason to keep, which an
// honest explanation should not claim more often than the activation holds it.
//
// Stories are corpus.ts `Story` objects (spans = first mentions), so describeCut, cutPoints and
// the summaries of the rest of nla work on them unchanged. `mentions` lists every mention, with
// the recalls marked, which is what recall-token accuracy is measured on.
//
// No template word is a value of any field (not "found", "box", "house", ...), so a value in
// the text is always a statement of that field.

import { FIELD_VALUES, FIELDS, type Field, type Latents, type Span, type Story } from './corpus.js';
import { type Rng, pick, randInt, rng as seeded, shuffled } from '../util/rng.js';

/** The facts recalled after the distractors; the others (emotion) are stated once only. */
export const RECALLED_FIELDS: readonly Field[] = ['name', 'place', 'object', 'colour', 'event'];
export const NEVER_RESTATED: readonly Field[] = FIELDS.filter((f) => !RECALLED_FIELDS.includes(f));

export interface Mention extends Span {
  /** True for a recall: a mention after the setup, predictable only from the earlier facts. */
  recall: boolean;
}
export interface WorldStory extends Story {
  mentions: Mention[];
}

const GIRLS = new Set(['Lily', 'Mia', 'Sue', 'Anna']);
export const isGirl = (name: string) => GIRLS.has(name);

// A template is text with {field} slots (a fact value) and {Pron} {pron} {pos} {obj} {kid}.
type Templates = readonly string[];

// The setup: one sentence per group, in this order, so every fact has been read by its end.
// Sentences are short because tok512 splits most words into 2-4 pieces and training time
// on this machine grows with the tokens of a story.
const SETUP: readonly Templates[] = [
  ['There was a little {kid} named {name}.', '{name} was a little {kid}.'],
  ['{Pron} went to the {place}.', '{Pron} liked to play at the {place}.'],
  ['There, {pron} saw a {colour} {object}.', '{Pron} had a {colour} {object}.'],
  ['{Pron} felt {emotion}.', 'It made {obj} feel {emotion}.'],
];

// The event: first mention of the event (and of nothing else new).
const EVENT: Templates = ['Then {name} {event} the {object}.', 'Then {pron} {event} the {object}.'];

// Fact-free sentences between the setup and the recalls, and between recalls. None states a
// value of any field ("blue" would be a colour).
const DISTRACTORS: Templates = [
  'The sun was warm.',
  'A bird sang.',
  'The sky was bright.',
  'Mom smiled.',
  'The wind was cool.',
  '{Pron} ran and jumped.',
  'A frog sat on a rock.',
  'Dad made tea.',
];

// Recall sentences, one list per recalled field; the recalled value is the first slot.
const RECALL: Record<string, Templates> = {
  name: ['Mom called {name}.', 'Everyone liked {name}.'],
  place: ['{Pron} stayed at the {place}.', 'It was fun at the {place}.'],
  object: ['{Pron} held the {object}.', '{Pron} looked at the {object}.'],
  colour: ['It was a {colour} {object}.', '{Pron} liked {colour} things.'],
  event: ['Yes, {pron} {event} it.', 'Dad said {pron} {event} it.'],
};

function pronouns(name: string): Record<string, string> {
  return isGirl(name)
    ? { Pron: 'She', pron: 'she', pos: 'her', obj: 'her', kid: 'girl' }
    : { Pron: 'He', pron: 'he', pos: 'his', obj: 'him', kid: 'boy' };
}

export interface WorldOptions {
  /** Distractor sentences between the setup and the first recall (default 1..3). */
  distractors?: [number, number];
  /** Distractor sentences between two recalls (default 0..1). */
  gap?: [number, number];
  /** Rounds of recall: each round recalls every recalled field once, in a fresh random order (default 1). */
  rounds?: number;
}

/** Largest rounds and distractor counts accepted (the defaults are 1-3; a story grows with each). */
export const WORLD_LIMIT = 100;

/**
 * `v` as WorldOptions, or an Error naming `file` (or a command) and the field under `field`: the
 * options arrive from world.json, so a count of 10^9 or a fraction must not reach plan().
 */
export function checkWorldOptions(v: unknown, file: string, field = 'world'): WorldOptions {
  if (v === undefined || v === null) return {};
  const where = (k?: string) => `${file}: field "${k === undefined ? field : `${field}.${k}`}"`;
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where()}: expected an object {rounds, distractors, gap}, found ${JSON.stringify(v)?.slice(0, 60)}`);
  const o = v as Record<string, unknown>, out: WorldOptions = {};
  const count = (x: unknown, name: string, min: number) => {
    if (!Number.isInteger(x) || (x as number) < min || (x as number) > WORLD_LIMIT) throw new Error(`${where(name)}: expected an integer ${min}..${WORLD_LIMIT}, found ${JSON.stringify(x)?.slice(0, 40)}`);
    return x as number;
  };
  if (o.rounds !== undefined) out.rounds = count(o.rounds, 'rounds', 1);
  for (const k of ['distractors', 'gap'] as const) {
    const r = o[k];
    if (r === undefined) continue;
    if (!Array.isArray(r) || r.length !== 2) throw new Error(`${where(k)}: expected a range [min, max], found ${JSON.stringify(r)?.slice(0, 40)}`);
    const lo = count(r[0], `${k}[0]`, 0), hi = count(r[1], `${k}[1]`, 0);
    if (lo > hi) throw new Error(`${where(k)}: the range [${lo}, ${hi}] has min above max`);
    out[k] = [lo, hi];
  }
  return out;
}

/** One planned sentence: a template and whether its fact slots are recalls. */
interface Planned { template: string; recall: boolean }

/**
 * The sentence plan of one story: setup, event, distractors, then each recalled field once in a
 * random order with distractors between. `rng` chooses variants, order and distractors only.
 */
function plan(rng: Rng, o: WorldOptions): Planned[] {
  const [d0, d1] = o.distractors ?? [1, 3];
  const [g0, g1] = o.gap ?? [0, 1];
  const range = (a: number, b: number) => a + randInt(rng, b - a + 1);
  const out: Planned[] = SETUP.map((t) => ({ template: pick(rng, t), recall: false }));
  out.push({ template: pick(rng, EVENT), recall: false });
  const distract = (n: number) => shuffled(rng, DISTRACTORS).slice(0, n).forEach((template) => out.push({ template, recall: false }));
  distract(range(d0, d1));
  for (let round = 0; round < (o.rounds ?? 1); round++) {
    shuffled(rng, RECALLED_FIELDS).forEach((f, i) => {
      if (i > 0 || round > 0) distract(range(g0, g1));
      out.push({ template: pick(rng, RECALL[f]!), recall: true });
    });
  }
  out.push({ template: 'The end.', recall: false });
  return out;
}

/**
 * Render a plan. `valueAt(field, k)` gives the value written at the k-th mention of the field
 * (counting from 0), so a control can change the earlier mentions and keep the recall.
 */
function render(sentences: Planned[], latents: Latents, valueAt: (f: Field, k: number) => string): WorldStory {
  const pro = pronouns(latents.name);
  const counts: Partial<Record<Field, number>> = {};
  let text = '';
  const mentions: Mention[] = [];
  for (const s of sentences) {
    if (text) text += ' ';
    let last = 0;
    for (const m of s.template.matchAll(/\{(\w+)\}/g)) {
      text += s.template.slice(last, m.index);
      const key = m[1]!;
      let value: string | undefined;
      if (key in FIELD_VALUES) {
        const f = key as Field;
        const k = counts[f] ?? 0;
        counts[f] = k + 1;
        value = valueAt(f, k);
        // Only the field the recall sentence is about counts as its recall (the object in
        // "It was a {colour} {object}" is a restatement, scored too when it comes later).
        mentions.push({ field: f, start: text.length, end: text.length + value.length, recall: s.recall || k > 0 });
      } else value = pro[key];
      if (value === undefined) throw new Error(`world template: unknown placeholder {${key}} in "${s.template}"`);
      text += value;
      last = m.index + m[0].length;
    }
    text += s.template.slice(last);
  }
  const spans: Span[] = [];
  for (const f of FIELDS) {
    const first = mentions.find((m) => m.field === f);
    if (!first) throw new Error(`world template: field "${f}" never written`);
    spans.push({ field: f, start: first.start, end: first.end });
  }
  spans.sort((a, b) => a.start - b.start);
  return { text, latents, spans, mentions };
}

/** Draw latents uniformly and independently (per-field chance = 1/choices). */
export function sampleWorldLatents(rng: Rng): Latents {
  const out = {} as Latents;
  for (const f of FIELDS) out[f] = pick(rng, FIELD_VALUES[f]);
  return out;
}

/** One story for these latents; `rng` chooses the sentences. */
export function renderWorldStory(latents: Latents, rng: Rng, o: WorldOptions = {}): WorldStory {
  return render(plan(rng, o), latents, (f) => latents[f]);
}

// Story i of a seed has its own stream, so one story (and its controls) can be rebuilt alone.
const storySeed = (seed: number, i: number) => (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;

/** Story i of a seed: latents and sentences from its own seeded stream. */
export function worldStory(seed: number, i: number, o: WorldOptions = {}): WorldStory {
  const rng = seeded(storySeed(seed, i));
  return renderWorldStory(sampleWorldLatents(rng), rng, o);
}

/** n stories, the same for the same seed on every run (story i = worldStory(seed, i)). */
export function generateWorldStories(n: number, seed: number, o: WorldOptions = {}): WorldStory[] {
  return Array.from({ length: n }, (_, i) => worldStory(seed, i, o));
}

/**
 * Story i of a seed and its control for one field: the same sentences, but every mention of
 * `field` before its first recall carries `other` instead of the true value, so a reader of the
 * control has not seen the fact the recall states. `recall` is the index (in both stories'
 * mentions) of that first recall, the one scored.
 */
export function controlStory(seed: number, i: number, field: Field, other: string, o: WorldOptions = {}): { story: WorldStory; control: WorldStory; recall: number } {
  const story = worldStory(seed, i, o);
  const recall = story.mentions.findIndex((m) => m.field === field && m.recall);
  if (recall < 0) throw new Error(`controlStory: field "${field}" is never recalled`);
  const k = story.mentions.slice(0, recall).filter((m) => m.field === field).length;
  const rng = seeded(storySeed(seed, i));
  const latents = sampleWorldLatents(rng);
  const control = render(plan(rng, o), latents, (f, j) => (f === field && j < k ? other : latents[f]));
  return { story, control, recall };
}

/** Another value of the field (of the same gender for names), chosen by rng. */
export function otherValue(field: Field, value: string, rng: Rng): string {
  const pool = FIELD_VALUES[field].filter((v) => v !== value && (field !== 'name' || isGirl(v) === isGirl(value)));
  return pick(rng, pool);
}
