// The measurement scripts' flags: `--name value` pairs, read by name. A flag without a default is
// required, and its absence an error naming the script and the flag.
export function argReader(script: string): (k: string, d?: string) => string {
  return (k, d) => {
    const i = process.argv.indexOf(`--${k}`);
    if (i > 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
    if (d === undefined) throw new Error(`${script}: --${k} is required`);
    return d;
  };
}
