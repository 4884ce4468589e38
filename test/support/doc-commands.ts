/**
 * The shell commands of a Markdown document, as a reader would type them: every line of a
 * ```sh block (a trailing `\` joins the next line; a `#` comment after a command is prose),
 * and every `$ command` of a ```console block with the lines printed under it. Blocks fenced
 * any other way (```text, ```ts, ```json, a bare ```) are shown, not run: templates with
 * placeholders (`<id>`, `10.0.0.1`) belong there.
 */

/** One command of a document. */
export interface DocCommand {
  /** The document's path, as given. */
  readonly file: string;
  /** 1-based line of the command in the document. */
  readonly line: number;
  /** Index of its block among the document's runnable blocks (0-based). */
  readonly block: number;
  /** The command, continuations joined, its trailing comment cut. */
  readonly command: string;
  /** For a ```console command: the lines shown as its output (`...` matches any text). */
  readonly expected: readonly string[];
}

/** Cuts a `#` comment that follows a command (not one inside quotes, not `$#` or `#` in a word). */
export function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i).trimEnd();
    }
  }
  return line.trimEnd();
}

/** Joins lines ending in `\` with the next one. */
function joinContinuations(
  lines: readonly { text: string; line: number }[],
): { text: string; line: number }[] {
  const joined: { text: string; line: number }[] = [];
  let pending: { text: string; line: number } | undefined;
  for (const l of lines) {
    const text = pending === undefined ? l.text : `${pending.text} ${l.text.trim()}`;
    const start = pending?.line ?? l.line;
    if (text.endsWith('\\')) pending = { text: text.slice(0, -1).trimEnd(), line: start };
    else {
      joined.push({ text, line: start });
      pending = undefined;
    }
  }
  if (pending !== undefined) joined.push(pending);
  return joined;
}

/** The commands of one ```sh block. */
function shCommands(
  file: string,
  block: number,
  body: readonly { text: string; line: number }[],
): DocCommand[] {
  return joinContinuations(body)
    .map((l) => ({ ...l, text: stripComment(l.text) }))
    .filter((l) => l.text.trim() !== '')
    .map((l) => ({ file, line: l.line, block, command: l.text.trim(), expected: [] }));
}

/** The `$ command`s of one ```console block, each with the lines up to the next `$ `. */
function consoleCommands(
  file: string,
  block: number,
  body: readonly { text: string; line: number }[],
): DocCommand[] {
  const commands: DocCommand[] = [];
  for (const l of body) {
    if (l.text.startsWith('$ ')) {
      commands.push({
        file,
        line: l.line,
        block,
        command: stripComment(l.text.slice(2)).trim(),
        expected: [],
      });
    } else if (commands.length > 0 && l.text.trim() !== '') {
      (commands[commands.length - 1]!.expected as string[]).push(l.text.trimEnd());
    }
  }
  return commands;
}

/** Every runnable command of a Markdown document, in document order. */
export function docCommands(file: string, markdown: string): DocCommand[] {
  const commands: DocCommand[] = [];
  let fence: string | undefined;
  let body: { text: string; line: number }[] = [];
  let block = 0;
  markdown.split('\n').forEach((text, i) => {
    const open = /^```(\S*)\s*$/.exec(text);
    if (fence === undefined && open !== null) {
      fence = open[1] ?? '';
      body = [];
    } else if (fence !== undefined && text.startsWith('```')) {
      if (fence === 'sh') commands.push(...shCommands(file, block++, body));
      if (fence === 'console') commands.push(...consoleCommands(file, block++, body));
      fence = undefined;
    } else if (fence !== undefined) {
      body.push({ text, line: i + 1 });
    }
  });
  return commands;
}

/** Whether `output` shows each of `expected`, in order (`...` in a line matches any text). */
export function showsLines(output: string, expected: readonly string[]): string | undefined {
  const lines = output.split('\n').map((l) => l.trimEnd());
  let at = 0;
  for (const want of expected) {
    const pattern = new RegExp(
      `^${want
        .split('...')
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    while (at < lines.length && !pattern.test(lines[at]!)) at++;
    if (at === lines.length) return want;
    at++;
  }
  return undefined;
}
