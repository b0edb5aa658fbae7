// The reference NLA implementation's model sidecar, `nla_meta.yaml` (kind nla_model), read
// field by field (../shared/docs/NLA-REFERENCE-FORMAT.md §1; reference: nla/config.py
// load_nla_config, nla/schema.py resolve_target_scale). It is written by PyYAML safe_dump, so
// it is parsed as YAML (double-quoted "\uXXXX" escapes, quoted multi-line scalars). Every
// error names the file and the field.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';

export const SIDECAR = 'nla_meta.yaml';

export interface ModelSidecar {
  file: string;
  schemaVersion?: number;
  /** "actor"/"av" -> av, "critic"/"ar" -> ar. */
  role: 'av' | 'ar';
  /** The role as written. */
  roleName: string;
  stage?: string;
  dModel: number;
  /** L2 norm vectors are rescaled to before injection; undefined = inject raw (null/"raw"/"none"/absent). */
  injectionScale?: number;
  /** Norm both vectors are scaled to before the MSE; undefined = raw MSE. Absent = sqrt(d_model). */
  mseScale?: number;
  tokens: {
    injectionChar: string;
    injectionTokenId: number;
    leftNeighborId: number;
    rightNeighborId: number;
    /** Ids every AR prompt must end with; undefined when null or absent. */
    criticSuffixIds?: number[];
  };
  /** AV template with `{injection_char}`; AR template with `{explanation}` (undefined if absent). */
  templates: { av: string; ar?: string };
  /** K: the AR reads the output of block K. From critic.extraction_layer_index (v1: critic.num_hidden_layers), top-level extraction_layer_index or ar.num_hidden_layers. */
  extractionLayerIndex?: number;
  /** Provenance, kept as read. */
  provenance: Record<string, unknown>;
  /** The whole document as parsed (re-written by the exporter with its provenance updated). */
  raw: Record<string, unknown>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The sidecar of a checkpoint directory (or the file itself). */
export function readModelSidecar(dirOrFile: string): ModelSidecar {
  const file = dirOrFile.endsWith('.yaml') ? dirOrFile : path.join(dirOrFile, SIDECAR);
  if (!fs.existsSync(file)) throw new Error(`${file}: no ${SIDECAR} (a reference NLA checkpoint ships its sidecar beside config.json)`);
  let doc: unknown;
  try {
    doc = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid YAML (${(e as Error).message})`);
  }
  return parseModelSidecar(doc, file);
}

export function parseModelSidecar(doc: unknown, file: string): ModelSidecar {
  if (!isObj(doc)) throw new Error(`${file}: not a YAML mapping`);
  const fail = (field: string, msg: string): never => {
    throw new Error(`${file}: field "${field}" ${msg}`);
  };
  const at = (field: string): unknown => field.split('.').reduce<unknown>((o, k) => (isObj(o) ? o[k] : undefined), doc);
  const int = (field: string, opts: { optional?: boolean; min?: number } = {}): number | undefined => {
    const v = at(field);
    if (v === undefined || v === null) return opts.optional ? undefined : fail(field, 'is missing');
    if (!Number.isSafeInteger(v) || (v as number) < (opts.min ?? 0)) fail(field, `is ${JSON.stringify(v)}, not an integer >= ${opts.min ?? 0}`);
    return v as number;
  };
  const str = (field: string, optional = false): string | undefined => {
    const v = at(field);
    if (v === undefined || v === null) return optional ? undefined : fail(field, 'is missing');
    if (typeof v !== 'string') fail(field, `is ${JSON.stringify(v)}, not a string`);
    return v as string;
  };

  if (doc.kind !== 'nla_model') fail('kind', `is ${JSON.stringify(doc.kind)}, expected "nla_model" (a dataset sidecar is not a model)`);
  const roleName = str('role')!;
  const role = roleName === 'actor' || roleName === 'av' ? 'av' : roleName === 'critic' || roleName === 'ar' ? 'ar' : fail('role', `is ${JSON.stringify(roleName)}, expected actor/av or critic/ar`);
  const dModel = int('d_model', { min: 1 })!;

  // Scales: null/"raw"/"none" -> none; "sqrt_d_model" -> sqrt(d); a number (or numeric string) -> itself.
  const scale = (field: string, absent: number | undefined): number | undefined => {
    const ext = at('extraction');
    if (ext !== undefined && ext !== null && !isObj(ext)) fail('extraction', `is ${JSON.stringify(ext)}, not a mapping`);
    if (!isObj(ext) || !(field.split('.')[1] in ext)) return absent;
    const v = at(field);
    if (v === null || v === 'raw' || v === 'none') return undefined;
    if (v === 'sqrt_d_model') return Math.sqrt(dModel);
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) fail(field, `is ${JSON.stringify(v)}: expected null, "raw", "none", "sqrt_d_model" or a positive number`);
    return n as number;
  };

  const suffix = at('tokens.critic_suffix_ids');
  if (suffix !== undefined && suffix !== null && !(Array.isArray(suffix) && suffix.length > 0 && suffix.every((x) => Number.isSafeInteger(x) && x >= 0))) {
    fail('tokens.critic_suffix_ids', `is ${JSON.stringify(suffix)}, not a non-empty list of token ids`);
  }

  // Template lookup: av then actor; ar then critic.
  const av = str('prompt_templates.av', true) ?? str('prompt_templates.actor', true) ?? fail('prompt_templates.actor', 'is missing (nor is prompt_templates.av given)');
  if (!av.includes('{injection_char}')) fail(at('prompt_templates.av') !== undefined ? 'prompt_templates.av' : 'prompt_templates.actor', 'has no {injection_char} slot');
  const ar = str('prompt_templates.ar', true) ?? str('prompt_templates.critic', true);
  if (ar !== undefined && !ar.includes('{explanation}')) fail(at('prompt_templates.ar') !== undefined ? 'prompt_templates.ar' : 'prompt_templates.critic', 'has no {explanation} slot');

  // K, wherever this version of the format put it; they must agree when several are given.
  const ks: [string, number][] = [];
  for (const f of ['critic.extraction_layer_index', 'critic.num_hidden_layers', 'extraction_layer_index', 'ar.num_hidden_layers']) {
    const k = int(f, { optional: true });
    if (k !== undefined) ks.push([f, k]);
  }
  for (const [f, k] of ks.slice(1)) if (k !== ks[0][1]) fail(f, `is ${k} but ${ks[0][0]} is ${ks[0][1]}`);

  const provenance: Obj = {};
  for (const k of ['base_checkpoint', 'trained_on', 'parent_checkpoints', 'created_at', 'created_by', 'training']) if (doc[k] !== undefined) provenance[k] = doc[k];

  return {
    file,
    schemaVersion: int('schema_version', { optional: true }),
    role,
    roleName,
    stage: str('stage', true),
    dModel,
    injectionScale: scale('extraction.injection_scale', undefined),
    mseScale: scale('extraction.mse_scale', Math.sqrt(dModel)),
    tokens: {
      injectionChar: str('tokens.injection_char')!,
      injectionTokenId: int('tokens.injection_token_id')!,
      leftNeighborId: int('tokens.injection_left_neighbor_id')!,
      rightNeighborId: int('tokens.injection_right_neighbor_id')!,
      criticSuffixIds: Array.isArray(suffix) ? (suffix as number[]) : undefined,
    },
    templates: { av, ar },
    extractionLayerIndex: ks[0]?.[1],
    provenance,
    raw: doc,
  };
}

/**
 * YAML as PyYAML (the reference's reader) accepts it: PyYAML refuses raw control characters
 * such as nla's DEL marker, so they are written as \u escapes (valid in double-quoted scalars
 * only: the document is parsed back and compared to make sure that is where they were).
 */
export function yamlText(doc: Record<string, unknown>): string {
  const raw = toYaml(doc, { lineWidth: 0 });
  // eslint-disable-next-line no-control-regex
  const text = raw.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (JSON.stringify(parseYaml(text)) !== JSON.stringify(doc)) throw new Error('nla_meta.yaml: a control character outside a double-quoted scalar cannot be escaped');
  return text;
}
