// The text-free baselines at one token of the viewed text, on the same scale as the
// explanations' FVE (1 - MSE/Var with the NLA's Var): the mean activation (floor), the mean
// training activation of the current token, and of the (previous, current) pair. An
// explanation that scores below the token baseline at a position says less than the token.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fveBigram, fveToken, type TokenRows } from '../nla/baselines.js';
import { normalizedMseHost } from '../nla/loss.js';
import type { NlaMeta } from '../nla/nla.js';
import { rowsOf } from '../nla/sft.js';
import { ActivationStore } from '../nla/store.js';

export interface PositionBaselines {
  floor: number;
  token?: number;
  bigram?: number;
}

/** Training rows to fit the token baselines on: the store's rows outside the eval split. */
export interface BaselineFit {
  store: string;
  train: TokenRows;
}

/**
 * The activation store the NLA was trained on: an explicit one, else one named in nla.json's
 * training records ("store", or `nla demo`'s "out"/activations), else <dir>/../activations.
 * Undefined when none is found: the page then shows the floor only and says why.
 */
export function findStore(nlaDir: string, meta: NlaMeta, explicit?: string): string | undefined {
  if (explicit !== undefined) return explicit;
  const named: string[] = [];
  for (const rec of Object.values(meta.training ?? {})) {
    if (typeof rec !== 'object' || rec === null) continue;
    const r = rec as Record<string, unknown>;
    if (typeof r.store === 'string') named.push(r.store);
    if (typeof r.out === 'string') named.push(path.join(r.out, 'activations'));
  }
  named.push(path.join(nlaDir, '..', 'activations'));
  return named.find((d) => fs.existsSync(path.join(d, 'manifest.json')));
}

export function fitBaselines(storeDir: string, meta: NlaMeta): BaselineFit {
  const store = ActivationStore.open(storeDir, { layer: meta.layer, d: meta.model.config.dim });
  const sha = store.manifest.model.sha256;
  // A reference pair names its base model but records no hash: nothing to compare.
  if (sha && meta.model.sha256 && sha !== meta.model.sha256) throw new Error(`${storeDir}/manifest.json: field "model.sha256" is ${sha.slice(0, 12)}…, the NLA's model is ${meta.model.sha256.slice(0, 12)}…`);
  const all = store.readAll();
  const idx = all.meta.map((m, i) => (m.split !== 'eval' ? i : -1)).filter((i) => i >= 0);
  const d = store.manifest.d;
  return {
    store: storeDir,
    train: { h: rowsOf(all.h, d, idx), ids: Int32Array.from(idx.map((i) => all.meta[i].token)), prevIds: Int32Array.from(idx.map((i) => all.meta[i].prevToken)) },
  };
}

/**
 * Baselines at every position of a text with activations h (n×d) and token ids (BOS first).
 * fveToken/fveBigram refit their tables per call; that is O(training rows) per position,
 * fine for the stores nla builds, and keeps one definition of the baselines.
 */
export function positionBaselines(h: Float32Array, ids: number[], meta: NlaMeta, fit?: BaselineFit): PositionBaselines[] {
  const d = meta.model.config.dim;
  return ids.map((id, p) => {
    const row = h.subarray(p * d, (p + 1) * d);
    const out: PositionBaselines = { floor: 1 - normalizedMseHost(meta.mean, row, d) / meta.variance };
    if (fit) {
      const test: TokenRows = { h: row, ids: [id], prevIds: [p > 0 ? ids[p - 1] : -1] };
      // Their MSE over the NLA's Var, so they read on the explanations' scale.
      out.token = 1 - fveToken(fit.train, test, d).mse / meta.variance;
      out.bigram = 1 - fveBigram(fit.train, test, d).mse / meta.variance;
    }
    return out;
  });
}
