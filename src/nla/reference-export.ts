// Write an NLA back in the reference implementation's layout (../shared/docs/NLA-REFERENCE-FORMAT.md
// §1-2): <out>/av/ and <out>/ar/, each a Hugging Face directory with its nla_meta.yaml.
//   av/  config.json, model.safetensors (the AV's current weights), tokenizer files, sidecar
//   ar/  config.json with num_hidden_layers = K+1, model.safetensors = embedding + blocks 0..K
//        (no final norm, no lm_head), value_head.safetensors {weight: [d, d] bf16, PyTorch
//        Linear layout}, tokenizer files, sidecar
// An NLA opened from a reference pair has its configs, tokenizer files and chat template copied
// from where it came from and its sidecars re-written with the provenance updated. nla's own
// NLAs (nla.json) are converted by reference-export-own.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';
import { writeSafetensors, type SaveDType } from '../io/safetensors.js';
import { writeWeights } from '../nn/weights-save.js';
import { AR_HEAD } from './ar.js';
import { writeOwnAsReferencePair } from './reference-export-own.js';
import type { NLA } from './nla.js';
import { SIDECAR, yamlText, type ModelSidecar } from './reference-sidecar.js';

/** Files of a reference half other than weights and sidecar: copied verbatim when present. */
const COPIED = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json', 'tokenizer.model', 'vocab.json', 'merges.txt', 'added_tokens.json'];

export interface ExportOptions {
  /** Dtype of the model weights (value_head is always bf16, as the reference writes it). Default f32. */
  dtype?: SaveDType;
  /** Recorded as created_by. */
  createdBy?: string;
  /** Directory of an nla-own NLA (recorded in parent_checkpoints). */
  source?: string;
}

function sidecarText(s: ModelSidecar, source: string, createdBy: string, update: (doc: Record<string, unknown>) => void): Uint8Array {
  const doc = structuredClone(s.raw);
  const parents = Array.isArray(doc.parent_checkpoints) ? doc.parent_checkpoints : [];
  doc.parent_checkpoints = [...parents, path.resolve(source)];
  doc.created_at = new Date().toISOString();
  doc.created_by = createdBy;
  update(doc);
  return new TextEncoder().encode(yamlText(doc));
}

export async function writeReferencePair(nla: NLA, out: string, opts: ExportOptions = {}): Promise<{ av: string; ar: string }> {
  const ref = nla.meta.reference;
  if (!ref) return writeOwnAsReferencePair(nla, out, opts);
  const dtype = opts.dtype ?? 'f32', createdBy = opts.createdBy ?? 'nla export';
  const av = path.join(out, 'av'), ar = path.join(out, 'ar');
  for (const [from, to] of [[ref.av, av], [ref.ar, ar]] as const) {
    if (path.resolve(from) === path.resolve(to)) throw new Error(`${out}: exporting over the package it was loaded from (${from}); choose another --out`);
    fs.mkdirSync(to, { recursive: true });
    for (const f of COPIED) if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(to, f));
  }
  // AV: every weight (streamed, one on the host at a time); config and tokenizer as loaded; the sidecar with the scale in use.
  await writeWeights(path.join(av, 'model.safetensors'), nla.av.model.w, { saveAs: dtype });
  writeFileAtomic(path.join(av, SIDECAR), [sidecarText(ref.avSidecar, ref.av, createdBy, (doc) => {
    (doc.extraction as Record<string, unknown> | undefined) ?? (doc.extraction = {});
    (doc.extraction as Record<string, unknown>).injection_scale = nla.meta.alpha;
  })]);

  // AR: the backbone without the head; the head alone in value_head.safetensors.
  const w = nla.ar.model.w;
  if (!w.has(AR_HEAD)) throw new Error(`the AR has no head "${AR_HEAD}"`);
  await writeWeights(path.join(ar, 'model.safetensors'), w, { saveAs: dtype, omit: [AR_HEAD] });
  const head = w.get(AR_HEAD);
  writeSafetensors(path.join(ar, 'value_head.safetensors'), { weight: { dtype: 'f32', shape: [...head.shape], data: (await head.data()) as Float32Array, saveAs: 'bf16' } });
  writeFileAtomic(path.join(ar, SIDECAR), [sidecarText(ref.arSidecar, ref.ar, createdBy, () => {})]);
  return { av, ar };
}
