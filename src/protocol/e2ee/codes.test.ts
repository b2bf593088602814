import assert from 'node:assert/strict';
import { test } from 'node:test';
import { E2EE_CLIENT_FAILURES, E2EE_FAILURE_CODES, E2EE_FAILURES, e2eeHttpStatus } from './codes.js';

test('gateway and app-side codes are disjoint, prefixed e2ee_, and each gateway code has a 4xx/5xx status', () => {
  const client = new Set(Object.keys(E2EE_CLIENT_FAILURES));
  for (const code of E2EE_FAILURE_CODES) {
    assert.ok(!client.has(code), `${code} is on both sides`);
    assert.match(code, /^e2ee_[a-z_]+$/);
    assert.ok(e2eeHttpStatus(code) >= 400 && e2eeHttpStatus(code) < 600);
    assert.ok(E2EE_FAILURES[code].meaning.length > 20);
  }
  for (const code of client) assert.match(code, /^e2ee_[a-z_]+$/);
});
