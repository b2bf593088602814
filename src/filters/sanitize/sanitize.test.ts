// The sanitize filter on its own: what it strips, what it refuses, what it records.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRequestContext } from '../../pipeline/context.js';
import { HeaderMap } from '../../pipeline/headers.js';
import type { Outcome, RequestContext } from '../../pipeline/types.js';
import { sanitizeConfig, SANITIZE_DEFAULT_LIMITS } from './config.js';
import { compileSanitize } from './sanitize.js';

function contextFor(headers: [string, string][], path = '/api/x'): RequestContext {
  return createRequestContext(
    { method: 'GET', authority: 'api.example.com', scheme: 'https', path },
    new HeaderMap([[':path', path], [':method', 'GET'], ...headers]),
    {},
    { routeId: 'r', pathTemplate: '/api/*', params: {} },
    () => new AbortController().signal,
  );
}

function run(config: unknown, headers: [string, string][], path?: string): { outcome: Outcome; ctx: RequestContext } {
  const ctx = contextFor(headers, path);
  return { outcome: compileSanitize(sanitizeConfig.parse(config))(ctx), ctx };
}

const removedBy = (ctx: RequestContext): readonly string[] => ctx.requestEdits.removals;
const denial = (outcome: Outcome): string => (outcome.kind === 'deny' ? outcome.reason : outcome.kind);

describe('strips what only gatehouse or the mesh may set', () => {
  test('built in: x-passport, every x-gatehouse-* and x-forwarded-client-cert, whatever their case, each recorded once by name', () => {
    const { outcome, ctx } = run({}, [
      ['X-Passport', 'eyJforged'],
      ['x-gatehouse-reason', 'fake'],
      ['X-Gatehouse-Anything', 'a'],
      ['x-gatehouse-anything', 'b'],
      ['x-forwarded-client-cert', 'By=spiffe://evil'],
      ['accept', 'application/json'],
      ['x-passport-hint', 'not reserved'],
    ]);
    assert.equal(outcome.kind, 'continue');
    const removed = ['x-passport', 'x-gatehouse-reason', 'x-gatehouse-anything', 'x-forwarded-client-cert'];
    assert.deepEqual([...removedBy(ctx)], removed);
    assert.deepEqual(ctx.actions, [{ filter: 'sanitize', action: 'removed_headers', items: removed }]);
  });

  test('a clean request is left alone and nothing is recorded', () => {
    const { outcome, ctx } = run({}, [['accept', '*/*'], ['user-agent', 'app/5.2']]);
    assert.equal(outcome.kind, 'continue');
    assert.deepEqual([...removedBy(ctx)], []);
    assert.equal(ctx.actions, undefined);
  });

  test('configured names and prefixes are stripped too; trusted XFCC is kept', () => {
    const { ctx } = run({ stripHeaders: ['X-User-Id'], stripPrefixes: ['x-internal-'], trustForwardedClientCert: true }, [
      ['x-user-id', '42'],
      ['x-internal-route', 'admin'],
      ['x-forwarded-client-cert', 'By=spiffe://mesh'],
      ['x-passport', 'still stripped'],
    ]);
    assert.deepEqual([...removedBy(ctx)], ['x-user-id', 'x-internal-route', 'x-passport']);
  });
});

describe('underscore spellings of reserved names', () => {
  test('x_passport, x_gatehouse_client, x_forwarded_client_cert and x_user_id (configured) are stripped: names compare after folding _ to -', () => {
    const { outcome, ctx } = run({ stripHeaders: ['x-user-id'] }, [
      ['x_passport', 'eyJforged'],
      ['x_gatehouse_client', 'partner-a'],
      ['X_Gatehouse-Reason', 'fake'],
      ['x_forwarded_client_cert', 'By=spiffe://evil'],
      ['x_user_id', '42'],
      ['x_request_hint', 'not reserved'],
    ]);
    assert.equal(outcome.kind, 'continue');
    assert.deepEqual([...removedBy(ctx)], ['x_passport', 'x_gatehouse_client', 'x_gatehouse-reason', 'x_forwarded_client_cert', 'x_user_id']);
  });

  test('with trustForwardedClientCert the mesh\'s x-forwarded-client-cert stays, but the underscore spelling (never the mesh\'s) goes', () => {
    const { ctx } = run({ trustForwardedClientCert: true }, [
      ['x-forwarded-client-cert', 'By=spiffe://mesh'],
      ['x_forwarded_client_cert', 'By=spiffe://evil'],
    ]);
    assert.deepEqual([...removedBy(ctx)], ['x_forwarded_client_cert']);
  });
});

describe('refuses what is too large or malformed, with the code and a detail that names no value', () => {
  test('too many headers, too many header bytes, one value too long → request_headers_too_large (431)', () => {
    const many = Array.from({ length: 11 }, (_, i): [string, string] => [`x-h${i}`, 'v']);
    assert.equal(denial(run({ limits: { maxHeaders: 10 } }, many).outcome), 'request_headers_too_large');
    assert.equal(denial(run({ limits: { maxHeaders: 11 } }, many).outcome), 'continue', 'the limit itself is allowed');
    assert.equal(denial(run({ limits: { maxHeaderListBytes: 100 } }, [['x-a', 'v'.repeat(60)], ['x-b', 'v'.repeat(40)]]).outcome), 'request_headers_too_large');
    const long = run({ limits: { maxHeaderValueBytes: 16 } }, [['cookie', 's3cret-session-token-value']]);
    assert.equal(denial(long.outcome), 'request_headers_too_large');
    assert.ok(long.outcome.kind === 'deny' && !long.outcome.detail?.includes('s3cret'), 'the detail never quotes the value');
  });

  test('limits count UTF-8 bytes: 8,000 × "€" (24,000 bytes) fails the 8,192-byte value limit; 2,730 pass', () => {
    const euro = run({}, [['x-note', '€'.repeat(8_000)]]);
    assert.equal(denial(euro.outcome), 'request_headers_too_large');
    assert.ok(euro.outcome.kind === 'deny' && euro.outcome.detail === 'header x-note is 24000 bytes > 8192');
    assert.equal(denial(run({}, [['x-note', '€'.repeat(2_730)]]).outcome), 'continue');
    assert.equal(denial(run({ limits: { maxHeaderListBytes: 100 } }, [['x-a', 'é'.repeat(49)]]).outcome), 'request_headers_too_large', '98 + 3 bytes > 100');
    assert.equal(denial(run({ limits: { maxPathBytes: 32 } }, [], `/api/${'é'.repeat(14)}`).outcome), 'uri_too_long', '33 bytes, 19 characters');
  });

  test('a control character in a pseudo-header (:authority with CR/LF) is refused too', () => {
    const bad = run({}, [[':authority', 'api.example.com\r\nx-injected: 1']]);
    assert.equal(denial(bad.outcome), 'bad_request_headers');
    assert.ok(bad.outcome.kind === 'deny' && bad.outcome.detail === 'header :authority has a control character');
    assert.equal(denial(run({}, [[':scheme', 'https\n']]).outcome), 'bad_request_headers');
  });

  test('a control character in a value → bad_request_headers (400); HTAB is allowed', () => {
    const bad = run({}, [['x-note', 'a\u0001b']]);
    assert.equal(denial(bad.outcome), 'bad_request_headers');
    assert.ok(bad.outcome.kind === 'deny' && bad.outcome.detail === 'header x-note has a control character');
    assert.equal(denial(run({}, [['x-note', 'a\tb']]).outcome), 'continue');
  });

  test('a path longer than maxPathBytes → uri_too_long (414)', () => {
    assert.equal(denial(run({ limits: { maxPathBytes: 32 } }, [], `/api/${'a'.repeat(40)}`).outcome), 'uri_too_long');
    assert.equal(denial(run({}, [], `/api/${'a'.repeat(SANITIZE_DEFAULT_LIMITS.maxPathBytes - 5)}`).outcome), 'continue');
  });
});

describe('config', () => {
  test('names Envoy will not let a filter remove are refused with the reason, not accepted as a silent no-op', () => {
    for (const [config, pattern] of [
      [{ stripHeaders: ['x-envoy-original-path'] }, /cannot strip "x-envoy-original-path": Envoy ignores ext_proc edits of x-envoy\* headers/],
      [{ stripPrefixes: ['X-Envoy-'] }, /cannot strip "x-envoy-"\*: Envoy ignores/],
      [{ stripHeaders: ['host'] }, /Envoy never lets a filter remove pseudo-headers or host/],
      [{ stripPrefixes: ['x-'] }, /at least 3 characters/],
      [{ stripHeaders: ['bad name'] }, /HTTP header name/],
    ] as const) {
      const parsed = sanitizeConfig.safeParse(config);
      assert.ok(!parsed.success, JSON.stringify(config));
      assert.match(parsed.error.issues.map((i) => i.message).join('\n'), pattern);
    }
  });
});
