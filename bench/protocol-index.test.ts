import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OVERHEAD_GOAL, protocolTable, toModuleResult } from './protocol/index.js';
import { table } from './table.js';

const row = (overheadRatio: number) => ({
  operation: 'verify signed request',
  opsPerSec: 1000,
  primitive: { description: 'ecdsa verify', opsPerSec: Math.round(1000 * overheadRatio) },
  overheadRatio,
});

test('rows are checked against the 1.3× goal', () => {
  const r = toModuleResult('signing', [row(1.1), row(OVERHEAD_GOAL), row(1.6)]);
  assert.equal(r.status, 'ok');
  assert.deepEqual(r.rows.map((x) => x.withinGoal), [true, true, false]);
  const text = protocolTable([r, { module: 'e2ee', status: 'missing', rows: [] }, { module: 'passport', status: 'failed', error: 'boom', rows: [] }]);
  assert.match(text, /1\.60×\s+NO/);
  assert.match(text, /e2ee: no e2ee\.bench\.js yet, skipped/);
  assert.match(text, /passport: FAILED: boom/);
});

test('an informational row is shown with its reason and never counts for or against the goal', () => {
  const r = toModuleResult('e2ee', [row(1.2), { ...row(1.7), informational: 'fixed by the RFC' }]);
  assert.deepEqual(r.rows.map((x) => x.withinGoal), [true, null]);
  const text = protocolTable([r]);
  assert.match(text, /1\.70×\s+info\*/);
  assert.doesNotMatch(text, /NO/);
  assert.match(text, /\* e2ee, verify signed request: not held to the goal: fixed by the RFC/);
  assert.equal(toModuleResult('e2ee', [{ ...row(1.2), informational: 3 }]).status, 'failed');
});

test('a module returning something else is a failure, not a crash', () => {
  assert.equal(toModuleResult('x', [{ operation: 'op' }]).status, 'failed');
  assert.equal(toModuleResult('x', undefined).status, 'failed');
});

test('table aligns numbers right and text left', () => {
  const t = table(['name', 'n'], [['a', 5], ['bbb', 12345]]).split('\n');
  assert.match(t[2] ?? '', /^a +5\.00$/);
  assert.match(t[3] ?? '', /^bbb +12,345$/);
  assert.equal(t[2]?.length, t[3]?.length);
});
