/** A strict parser of the Prometheus text exposition format (0.0.4), for tests of `/metrics`. */

/** One sample line. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A parsed exposition: the declared type of every family and every sample. */
export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** The family a sample belongs to (a histogram's or summary's `_bucket`, `_sum`, `_count` lines). */
function familyOf(name: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(name)) return name;
  const match = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (match !== null && ['histogram', 'summary'].includes(types.get(match[1]!) ?? '')) return match[1];
  return undefined;
}

/**
 * Parses `text`; throws on any malformed line, a sample without a preceding `# TYPE`, a
 * family declared twice, or a value that is not a number.
 */
export function parsePrometheus(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1} '${line}'`;
    if (line === '' || line.startsWith('# HELP ')) return;
    if (line.startsWith('# TYPE ')) {
      const [name, type, ...rest] = line.slice('# TYPE '.length).split(' ');
      if (name === undefined || type === undefined || rest.length > 0 || !TYPES.has(type)) {
        throw new Error(`bad TYPE at ${where}`);
      }
      if (types.has(name)) throw new Error(`family ${name} declared twice (${where})`);
      types.set(name, type);
      return;
    }
    if (line.startsWith('#')) return;
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`malformed sample at ${where}`);
    const [, name, labelText, valueText] = match as unknown as [string, string, string | undefined, string];
    if (familyOf(name, types) === undefined) throw new Error(`sample of undeclared family at ${where}`);
    const labels: Record<string, string> = {};
    if (labelText !== undefined && labelText !== '') {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < labelText.length) {
        const label = LABEL.exec(labelText);
        if (label === null) throw new Error(`malformed labels at ${where}`);
        labels[label[1]!] = label[2]!;
      }
    }
    // Prometheus parses values with Go's ParseFloat: NaN and Inf in any case (prom-client writes `Nan`).
    const value = /^[+-]?inf$/i.test(valueText)
      ? valueText.startsWith('-')
        ? -Infinity
        : Infinity
      : Number(valueText);
    if (Number.isNaN(value) && !/^nan$/i.test(valueText)) throw new Error(`bad value at ${where}`);
    samples.push({ name, labels, value });
  });
  return { types, samples };
}

/** The value of the one sample `name` with exactly `labels`; throws if there is none. */
export function sampleValue(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  const found = exposition.samples.filter(
    (s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want,
  );
  if (found.length !== 1) throw new Error(`${found.length} samples ${name}${want}`);
  return found[0]!.value;
}
