#!/usr/bin/env node
// Reports source files over a line budget and functions over a statement-span budget, so a
// file keeps one concern a reader can name and a function fits on a screen. Exit status 1
// when anything is over; `--report` prints the figures without failing.
//
//   node scripts/code-size.mjs [--report] [--file-lines 500] [--function-lines 70] [dirs...]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  args.splice(at, 2);
  return value;
};
const report = args.includes('--report');
const fileLinesMax = option('--file-lines', 500);
const functionLinesMax = option('--function-lines', 70);
const roots = args.filter((a) => !a.startsWith('--'));
if (roots.length === 0) roots.push('src');

/**
 * Files exempt from the file budget, each with the reason; they hold tables or generated
 * data, not logic.
 */
const fileExempt = new Map([]);

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) yield path;
  }
}

const over = [];
for (const root of roots) {
  for (const path of walk(root)) {
    const text = readFileSync(path, 'utf8');
    const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
    const lines = source.getLineAndCharacterOfPosition(text.length).line + 1;
    const name = relative(process.cwd(), path);
    if (lines > fileLinesMax && !fileExempt.has(name)) over.push(`${name}: ${lines} lines`);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && node.body !== undefined) {
        const start = source.getLineAndCharacterOfPosition(node.body.getStart(source)).line;
        const end = source.getLineAndCharacterOfPosition(node.body.getEnd()).line;
        const span = end - start + 1;
        if (span > functionLinesMax) {
          const label = node.name?.getText(source) ?? '<anonymous>';
          over.push(`${name}:${start + 1}: function ${label} ${span} lines`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
}
for (const line of over) console.log(line);
if (over.length > 0 && !report) {
  console.error(`${over.length} over budget (files ${fileLinesMax} lines, functions ${functionLinesMax} lines)`);
  process.exit(1);
}
