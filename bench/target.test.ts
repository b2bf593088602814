// bench/target.ts's tool probes: a missing tool is an answer, not a throw (`npm run bench` on a
// machine without h2load runs the rest and says what to install).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandVersion, hasCommand } from './target.js';

test('a command that is not installed has no version and is not present, without throwing', () => {
  assert.equal(commandVersion('gatehouse-no-such-tool'), undefined);
  assert.equal(hasCommand('gatehouse-no-such-tool'), false);
});

test('an installed command gives the first line of its --version', () => {
  assert.equal(commandVersion(process.execPath), process.version);
  // a command that exits non-zero counts as absent
  assert.equal(commandVersion('false'), undefined);
});
