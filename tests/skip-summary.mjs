// A node --test reporter (npm test runs it beside spec): counts skipped tests by reason and prints
// them as the run's very last lines, so a run that skipped tests (e.g. NLA_ALLOW_MISSING_MODELS=1
// without the models) cannot pass for a full one. Plain JS: node loads reporters without tsx.
import * as fs from 'node:fs';

/** @param {Map<string, string[]>} skips reason -> test names */
function summary(skips) {
  const n = [...skips.values()].reduce((a, t) => a + t.length, 0);
  let s = '\nskipped tests:\n';
  for (const [reason, tests] of skips) s += tests.map((t) => `  - ${t}\n`).join('') + `    (${reason})\n`;
  const why = [...skips].map(([reason, tests]) => `${tests.length} because: ${reason}`).join('; ');
  return `${s}SKIPPED ${n} test${n === 1 ? '' : 's'}: ${why}\n`;
}

export default async function* reporter(source) {
  const skips = new Map();
  for await (const ev of source) {
    if ((ev.type !== 'test:pass' && ev.type !== 'test:fail') || !ev.data.skip) continue;
    // A skipped describe hides how many tests it holds, so it is named as a whole suite.
    const reason = typeof ev.data.skip === 'string' ? ev.data.skip : '(no reason given)';
    const name = ev.data.details?.type === 'suite' ? `${ev.data.name} (whole suite)` : ev.data.name;
    skips.set(reason, [...(skips.get(reason) ?? []), name]);
  }
  // Written at exit rather than yielded: the spec reporter writes its summary to the same stdout
  // from its own stream, and only the exit hook is sure to come after it.
  if (skips.size) process.once('exit', () => fs.writeSync(1, summary(skips)));
}
