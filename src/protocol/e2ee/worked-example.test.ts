// The spec's generated sections equal what the code produces today.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { E2EE_FAILURE_CODES, E2EE_FAILURES } from './codes.js';
import { DOC_PATH, generatedDoc, workedExampleRows } from './worked-example.js';

const doc = readFileSync(DOC_PATH, 'utf8');

test('docs/protocol/e2ee.md carries exactly the generated worked example and failure table', () => {
  // On failure: npx tsx src/protocol/e2ee/worked-example.ts --write, and review the diff.
  assert.equal(doc, generatedDoc(doc));
});

test('every intermediate value the brief lists is in the worked example, wrapped hex in the doc', () => {
  const rows = new Map(workedExampleRows());
  for (const label of ['gateway pkR', 'info', 'enc (pkE)', 'shared_secret', 'key', 'base_nonce', 'request ciphertext ct', 'salt (enc ‖ response_nonce)', 'response key']) {
    const value = rows.get(label);
    assert.ok(value !== undefined && /^[0-9a-f]+$/.test(value), label);
    assert.ok(doc.includes(value.slice(0, 64)), `${label} in the doc`);
  }
});

test('every failure code appears in the doc with its status', () => {
  for (const code of E2EE_FAILURE_CODES) assert.ok(doc.includes(`| \`${code}\` | ${E2EE_FAILURES[code].status} |`), code);
});
