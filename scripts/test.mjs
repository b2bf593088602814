#!/usr/bin/env node
// The test command: every *.test.ts under src/, sdk/, test/ and bench/, on node's own runner through tsx.
// Node 20's --test takes no globs, so the files are listed here. Extra arguments narrow the run:
// `npm test -- src/protocol` runs only the tests below that path.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['src', 'sdk', 'test', 'bench'];
const files = [];
const walk = (dir) => {
  let entries;
  try { entries = readdirSync(dir); } catch { return; }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'gen') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
};
for (const r of roots) {
  const p = resolve(root, r);
  if (statSync(p, { throwIfNoEntry: false })?.isFile()) files.push(relative(root, p));
  else walk(p);
}
files.sort();
// A full run (no arguments) first type-checks and lints the whole tree: tsx strips types without
// checking them, so this is where a type error fails the suite.
if (process.argv.length <= 2) {
  for (const [name, args] of [['tsc', ['-p', 'tsconfig.json', '--noEmit']], ['eslint', ['.']]]) {
    const bin = join(root, 'node_modules/.bin', name);
    const r = spawnSync(bin, args, { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) { console.error(`${name} failed`); process.exit(r.status ?? 1); }
    console.log(`${name}: ok`);
  }
}
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files], { cwd: root, stdio: 'inherit' });
process.exit(res.status ?? 1);
