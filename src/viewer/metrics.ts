// Training curves and evaluation rows from an NLA's metrics.jsonl (what `nla demo`, `nla sft-ar`,
// `nla sft-av`, `nla rl` and `nla eval --metrics` append), shaped for the page: per training
// stage one series per numeric field over `step`; every line without a step is an evaluation row.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One training stage's curves: x = step, one y array per numeric field (null where absent). */
export interface StageCurves {
  stage: string;
  steps: number[];
  series: Record<string, (number | null)[]>;
}

/** One evaluation line: its stage and its numeric fields (nested objects and text are left out). */
export interface EvalRow {
  stage: string;
  values: Record<string, number>;
}

export interface MetricsView {
  file: string;
  curves: StageCurves[];
  evals: EvalRow[];
}

// Fields that are bookkeeping, not something to plot.
const NOT_PLOTTED = new Set(['step', 'seconds', 'lr']);

/**
 * Where an NLA's metrics are: an explicit file, else <dir>/metrics.jsonl (the training
 * commands' default), else <dir>/../metrics.jsonl (where `nla demo` writes it, beside nla/).
 */
export function findMetrics(nlaDir: string, explicit?: string): string | undefined {
  if (explicit !== undefined) {
    if (!fs.existsSync(explicit)) throw new Error(`--metrics ${explicit}: file not found`);
    return explicit;
  }
  return [path.join(nlaDir, 'metrics.jsonl'), path.join(nlaDir, '..', 'metrics.jsonl')].find((f) => fs.existsSync(f));
}

export function readMetrics(file: string): MetricsView {
  const stages = new Map<string, { rows: Record<string, unknown>[] }>();
  const evals: EvalRow[] = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let m: unknown;
    try {
      m = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error(`${file}:${i + 1}: expected a JSON object`);
    const o = m as Record<string, unknown>;
    if (typeof o.stage !== 'string') throw new Error(`${file}:${i + 1}: field "stage" missing or not a string`);
    // Checkpoint notes carry a step but no measurement.
    if (o.stage.endsWith('-checkpoint')) return;
    if (typeof o.step === 'number') {
      let s = stages.get(o.stage);
      if (!s) stages.set(o.stage, (s = { rows: [] }));
      s.rows.push(o);
      return;
    }
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && Number.isFinite(v)) values[k] = v;
    if (Object.keys(values).length) evals.push({ stage: o.stage, values });
  });
  const curves: StageCurves[] = [];
  for (const [stage, { rows }] of stages) {
    // A resumed run may repeat a step; the later line wins, and steps are plotted in order.
    const byStep = new Map<number, Record<string, unknown>>();
    for (const r of rows) byStep.set(r.step as number, r);
    const steps = [...byStep.keys()].sort((a, b) => a - b);
    const keys = new Set<string>();
    for (const r of byStep.values()) for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && !NOT_PLOTTED.has(k)) keys.add(k);
    const series: Record<string, (number | null)[]> = {};
    for (const k of keys) series[k] = steps.map((s) => {
      const v = byStep.get(s)![k];
      return typeof v === 'number' && Number.isFinite(v) ? v : null;
    });
    curves.push({ stage, steps, series });
  }
  return { file, curves, evals };
}
