// The deny table is the contract clients and operators read: docs/operations.md prints it, and this
// keeps the two equal.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findPackageRoot } from '../config/load.js';
import { DENY_REASONS, renderDenial, SUSPICIOUS_REASONS, suspicionOf } from './deny.js';

test('docs/operations.md lists exactly the deny table, in its order, with each status and meaning', () => {
  const doc = readFileSync(join(findPackageRoot(), 'docs', 'operations.md'), 'utf8');
  const block = /<!-- deny-reasons:begin -->\n([\s\S]*?)<!-- deny-reasons:end -->/.exec(doc)?.[1];
  assert.ok(block !== undefined, 'the deny-reasons block is missing');
  const expected = ['| code | status | meaning |', '|---|---|---|', ...Object.entries(DENY_REASONS).map(([code, r]) => `| \`${code}\` | ${r.status} | ${r.message} |`)];
  assert.deepEqual(block.trimEnd().split('\n'), expected);
});

test('a denial renders its status, its code in header and body, and the decision id', () => {
  const denial = renderDenial('request_headers_too_large', 'req-7');
  assert.equal(denial.status, 431);
  assert.equal(denial.headers['x-gatehouse-reason'], 'request_headers_too_large');
  assert.equal(denial.headers['x-gatehouse-decision-id'], 'req-7');
  assert.deepEqual(JSON.parse(denial.body.toString()), { error: 'request_headers_too_large', message: DENY_REASONS.request_headers_too_large.message, decision_id: 'req-7' });
});

test('suspicious codes: each one is a deny code, the cheap and routine ones are not, and unknown strings are not', () => {
  for (const code of Object.keys(SUSPICIOUS_REASONS)) assert.ok(Object.hasOwn(DENY_REASONS, code), `${code} is a deny code`);
  for (const code of ['signature_invalid', 'signature_replayed', 'signature_stale', 'signature_future_dated', 'credential_invalid', 'credential_wrong_device', 'device_revoked', 'attestation_insufficient', 'account_disabled', 'e2ee_decrypt_failed', 'e2ee_unknown_device']) {
    assert.notEqual(suspicionOf(code), undefined, `${code} is suspicious`);
  }
  for (const code of ['signature_missing', 'signature_malformed', 'credential_missing', 'credential_expired', 'route_not_found', 'processing_timeout', 'dependency_unavailable', 'e2ee_envelope_malformed']) {
    assert.equal(suspicionOf(code), undefined, `${code} is not suspicious`);
  }
  assert.equal(suspicionOf('toString'), undefined, 'no prototype keys');
  assert.equal(suspicionOf('signature_replayed'), 'replay');
});
