import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigFile } from '../../test/support/config.js';
import { defaultConfigPath } from './load.js';
import { devOnlyFilesIn } from './dev-only.js';

test('the embedded dev default names its dev-only key files, and the scan finds each once, wherever it is nested', () => {
  const loaded = loadConfigFile(defaultConfigPath());
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.map((e) => e.format()).join('\n'));
  const files = devOnlyFilesIn(loaded.config);
  assert.ok(files.some((f) => f.endsWith('e2ee-gateway-7.dev-only.key')), files.join(', '));
  assert.ok(files.some((f) => f.includes('passport') && f.includes('.dev-only.')), files.join(', '));
  for (const name of ['challenge-secret', 'credential-issuer-keys', 'login-idp', 'attestation-service']) assert.ok(files.some((f) => f.includes(name) && f.includes('.dev-only.')), `${name}: ${files.join(', ')}`);
  assert.equal(new Set(files).size, files.length);
  assert.deepEqual(devOnlyFilesIn({ defaults: { filters: [] }, routes: [{ filters: [{ config: { keys: [{ file: 'prod/key.pem' }] } }] }] }), []);
  assert.deepEqual(devOnlyFilesIn({ defaults: { filters: [{ config: { a: [[{ b: 'x.dev-only.pem' }]] } }] }, routes: [] }), ['x.dev-only.pem']);
});
