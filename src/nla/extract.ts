// Extraction: run M over documents and keep h = the residual stream after block K at chosen
// token positions, written to an activation store.
import type { Tokenizer } from '../io/tokenizer.js';
import type { LanguageModel } from '../nn/model.js';
import * as T from '../tensor/index.js';
import { padRight } from './batch.js';
import { StoreWriter, type RowMeta, type SourceMix, type StoreManifest } from './store.js';
import type { SummaryFormat } from './corpus.js';

export interface ExtractItem {
  ids: number[]; // the document's tokens, BOS first
  positions: number[]; // token indices whose activation to keep
  meta: Omit<RowMeta, 'pos' | 'token' | 'prevToken'>[]; // one per position
}

/** Token ids and the character offset where each token starts (BOS at 0), via decodeToken. */
export function tokenizeWithOffsets(tok: Tokenizer, text: string): { ids: number[]; offsets: number[] } {
  const ids = tok.encode(text, { bos: true });
  const offsets: number[] = [0];
  let at = 0;
  for (let i = 1; i < ids.length; i++) {
    offsets.push(at);
    at += tok.decodeToken(ids[i - 1], ids[i]).length;
  }
  return { ids, offsets };
}

/** Layer-K activations at the given positions; host rows [n*d] in item order. */
export async function extractActivations(
  model: LanguageModel,
  layer: number,
  items: ExtractItem[],
  opts: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<Float32Array> {
  const d = model.cfg.dim;
  const total = items.reduce((a, it) => a + it.positions.length, 0);
  const out = new Float32Array(total * d);
  const bs = opts.batchSize ?? 16;
  let row = 0;
  for (let i = 0; i < items.length; i += bs) {
    const group = items.slice(i, i + bs);
    // Only the prefix up to the last wanted position matters (causal): trim before padding.
    const seqs = group.map((it) => it.ids.slice(0, Math.max(...it.positions) + 1));
    const batch = padRight(seqs, 0);
    const hidden = T.noGrad(() =>
      T.tidy(() => model.forward(T.Tensor.from(batch.ids, [batch.B, batch.T], 'i32'), { untilLayer: layer }).hidden),
    );
    const h = (await hidden.data()) as Float32Array;
    hidden.dispose();
    group.forEach((it, b) => {
      for (const p of it.positions) out.set(h.subarray((b * batch.T + p) * d, (b * batch.T + p + 1) * d), row++ * d);
    });
    opts.onProgress?.(Math.min(i + bs, items.length), items.length);
  }
  return out;
}

/** Extract into a store on disk (streams: one batch of documents in memory at a time). */
export async function extractToStore(
  model: LanguageModel,
  layer: number,
  items: ExtractItem[],
  dir: string,
  header: { modelName: string; sha256?: string; dtype?: 'f16' | 'f32'; sources?: SourceMix; summary?: SummaryFormat },
  onProgress?: (done: number, total: number) => void,
): Promise<StoreManifest> {
  const d = model.cfg.dim;
  const w = new StoreWriter(dir, { model: { name: header.modelName, sha256: header.sha256, dim: d, nLayers: model.cfg.nLayers }, layer, dtype: header.dtype ?? 'f32', d, ...(header.sources ? { sources: header.sources } : {}), ...(header.summary ? { summary: header.summary } : {}) });
  const chunk = 256;
  for (let i = 0; i < items.length; i += chunk) {
    const part = items.slice(i, i + chunk);
    const h = await extractActivations(model, layer, part);
    let r = 0;
    for (const it of part) {
      it.positions.forEach((p, k) => {
        w.add(h.slice(r * d, (r + 1) * d), { ...it.meta[k], pos: p, token: it.ids[p], prevToken: p > 0 ? it.ids[p - 1] : -1 } as RowMeta);
        r++;
      });
    }
    onProgress?.(Math.min(i + chunk, items.length), items.length);
  }
  return w.finish();
}
