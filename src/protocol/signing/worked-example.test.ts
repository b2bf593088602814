// The specification cannot drift from the code: its worked example and failure table must be exactly
// what the code produces now.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { base64Decode, utf8 } from '../common/base64.js';
import { verifyRaw } from './keys.js';
import { DEFAULT_CHALLENGE_TTL_SECONDS, MAX_CHALLENGE_TTL_SECONDS } from './challenge.js';
import { DEFAULT_FRESHNESS, REQUIRED_COMPONENTS, SIGNATURE_TAG } from './profile.js';
import { BLOCKS, DOC_PATH, buildWorkedExample, documentedP256Signature, extractBlock, failureTableMarkdown } from './worked-example.js';

const doc = readFileSync(DOC_PATH, 'utf8');
const regenerate = 'regenerate with: node --import tsx src/protocol/signing/worked-example.ts --write';

test('the worked example in docs/protocol/signing.md is what the code produces from the deterministic keys', async () => {
  const sample = documentedP256Signature(doc);
  assert.ok(sample, 'the document has a sample P-256 signature');
  const example = await buildWorkedExample(sample);
  // The randomised ECDSA sample must verify over the documented base and be raw r‖s.
  const bytes = base64Decode(/^sig=:(.*):$/.exec(sample)![1]!);
  assert.equal(bytes?.length, 64);
  assert.ok(verifyRaw('ecdsa-p256-sha256', example.p256.publicKey, utf8(example.p256.base), bytes));
  assert.equal(extractBlock(doc, BLOCKS.example), example.markdown, regenerate);
});

test('the failure table in the document is the code table', () => {
  assert.equal(extractBlock(doc, BLOCKS.failures), failureTableMarkdown(), regenerate);
});

test('the prose states the profile constants the code enforces', () => {
  assert.ok(doc.includes(`\`created\` ∈ [now − ${DEFAULT_FRESHNESS.maxAgeSeconds} s, now + ${DEFAULT_FRESHNESS.maxSkewSeconds} s]`));
  assert.ok(doc.includes(`\`created\` + ${DEFAULT_FRESHNESS.maxLifetimeSeconds} s`));
  assert.ok(doc.includes(`\`tag\` = \`"${SIGNATURE_TAG}"\``));
  assert.ok(doc.includes(REQUIRED_COMPONENTS.map((c) => `"${c}"`).join(' ')));
  assert.ok(doc.includes(`an expiry ${DEFAULT_CHALLENGE_TTL_SECONDS} s after issue — configurable, never more than ${MAX_CHALLENGE_TTL_SECONDS} s`));
});
