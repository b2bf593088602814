// The committed generated code must be exactly what `npm run gen` makes from proto/: a proto
// edited without regenerating, or a generated file edited by hand, fails here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const root = join(import.meta.dirname, '..');

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

test('src/gen is exactly what buf generates from proto/', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'gen-drift-'));
  t.after(() => { rmSync(out, { recursive: true, force: true }); });
  execFileSync(process.execPath, [join(root, 'scripts/gen.mjs'), '--out', out], { cwd: root, stdio: 'pipe' });
  const committed = join(root, 'src/gen');
  const fresh = listFiles(out).map((p) => relative(out, p)).sort();
  const current = listFiles(committed).map((p) => relative(committed, p)).sort();
  assert.deepEqual(current, fresh, 'the set of generated files differs: run `npm run gen`');
  for (const file of fresh) {
    assert.equal(readFileSync(join(committed, file), 'utf8'), readFileSync(join(out, file), 'utf8'), `${file} drifted: run \`npm run gen\``);
  }
});
