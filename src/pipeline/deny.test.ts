// The deny table is the contract clients and operators read: docs/operations.md prints it, and this
// keeps the two equal.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findPackageRoot } from '../config/load.js';
import { DENY_REASONS, renderDenial } from './deny.js';

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
