// The injection check (the reference's diagnosis of a package that "writes about the marker"):
// explain real activations, the marker token's own embedding, and random vectors of the same
// norms. An AV that reads the injected vector writes different things for different vectors and
// not what it writes for the marker; an AV that ignores the injection (wrong scale, wrong
// position, a drifted template) sees the same prompt every time and writes the same thing for
// all three. The AR scores each kind of explanation against the real activations too.
import * as T from '../tensor/index.js';
import { gaussian, SeededRng } from '../util/rng.js';
import type { NLA } from './nla.js';

export interface CheckParts {
  d: number;
  /** Greedy output per row (the parsed explanation, or the raw text when it did not parse). */
  explain(h: Float32Array): Promise<{ text: string; parsed: boolean }[]>;
  /** Normalised MSE of the AR's reconstruction from an explanation against one row (the failure value when it did not parse). */
  score(explanations: { text: string; parsed: boolean }[], h: Float32Array): Promise<number[]>;
  /** The marker token's embedding row (what the AV sees at the marker without an injection). */
  marker(): Promise<Float32Array>;
}

export interface InjectionCheck {
  rows: number;
  real: string[];
  marker: string;
  random: string[];
  /** Distinct outputs among the real rows. */
  distinctReal: number;
  /** Share of real rows whose output equals the marker embedding's. */
  sameAsMarker: number;
  /** Share of real rows whose output equals that of a random vector of the same norm. */
  sameAsRandom: number;
  /** Mean AR MSE against the real rows of: their own explanations, the marker's, the random vectors'. */
  mseReal: number;
  mseMarker: number;
  mseRandom: number;
  /** More than one distinct output, and at most half the rows written as for the marker or for noise. */
  readsInjection: boolean;
}

export async function injectionCheck(p: CheckParts, h: Float32Array, seed = 0): Promise<InjectionCheck> {
  const d = p.d, n = h.length / d;
  if (!Number.isInteger(n) || n < 2) throw new Error(`injection check: needs at least two activations of width ${d}, got ${h.length / d}`);
  const norm = (v: ArrayLike<number>, o = 0) => Math.sqrt(Array.from({ length: d }, (_, i) => v[o + i] ** 2).reduce((a, b) => a + b, 0));
  const g = gaussian(new SeededRng(seed).fn());
  const random = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    const v = Float32Array.from({ length: d }, () => g());
    const s = norm(h, r * d) / Math.max(norm(v), 1e-12);
    for (let i = 0; i < d; i++) random[r * d + i] = v[i] * s;
  }
  const markerRow = await p.marker();
  const [real, [marker], rand] = [await p.explain(h), await p.explain(markerRow), await p.explain(random)];
  const same = (a: { text: string }[], b: (i: number) => { text: string }) => a.filter((x, i) => x.text === b(i).text).length / n;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sameAsMarker = same(real, () => marker), sameAsRandom = same(real, (i) => rand[i]);
  const distinctReal = new Set(real.map((x) => x.text)).size;
  return {
    rows: n,
    real: real.map((x) => x.text),
    marker: marker.text,
    random: rand.map((x) => x.text),
    distinctReal,
    sameAsMarker,
    sameAsRandom,
    mseReal: mean(await p.score(real, h)),
    mseMarker: mean(await p.score(real.map(() => marker), h)),
    mseRandom: mean(await p.score(rand, h)),
    readsInjection: distinctReal > 1 && sameAsMarker <= 0.5 && sameAsRandom <= 0.5,
  };
}

/** The check's parts for a loaded NLA: greedy explanations, the AR's scores, the AV's marker embedding (with its embedding scale). */
export function nlaCheckParts(nla: NLA, maxTokens = nla.meta.maxExplanationTokens): CheckParts {
  return {
    d: nla.ar.d,
    explain: async (h) => (await nla.av.explain(h, { temperature: 0, maxTokens })).map((e) => ({ text: e.explanation ?? e.text, parsed: e.explanation !== undefined })),
    score: async (ex, h) => {
      const preds = await nla.ar.predictHost(ex.map((e) => (e.parsed ? e.text : '')));
      return ex.map((e, i) => (e.parsed ? nla.mse(preds, h, i, i) : 2));
    },
    marker: async () => {
      const E = nla.av.model.w.get('model.embed_tokens.weight'), id = nla.meta.placeholderId;
      // A fresh tensor (not a view of the parameter), scaled as the model scales its embeddings.
      const row = T.noGrad(() => T.tidy(() => T.mul(E.slice(0, id, id + 1), nla.av.model.cfg.embedScale ?? 1)));
      const v = Float32Array.from((await row.data()) as Float32Array);
      row.dispose();
      return v;
    },
  };
}
