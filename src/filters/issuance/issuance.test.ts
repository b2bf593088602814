// The issuance filter on its own: the HTTP contract it checks at the headers (cheapest first, before
// any body is buffered), the challenge endpoint, and the enrollment's login token, whose account is
// what a security event names should the enrollment be refused.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportJWK, SignJWT } from 'jose';
import { tempDir } from '../../../test/support/temp-dir.js';
import { createRequestContext } from '../../pipeline/context.js';
import { parseFilterConfig } from '../../pipeline/filter-config.js';
import { HeaderMap } from '../../pipeline/headers.js';
import { STATE } from '../../pipeline/state.js';
import type { Outcome, RequestContext } from '../../pipeline/types.js';
import { createFilterDeps } from '../deps.js';
import { issuanceConfigIn } from './config.js';
import { compileIssuance, ISSUANCE_ACTIONS } from './issuance.js';

const NOW_MS = Date.UTC(2026, 11, 4, 6, 0, 0);
const BASE = '/gatehouse/v1/device';

async function setup(t: { after: (fn: () => void) => void }) {
  const dir = tempDir(t);
  const idp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'secret.hex'), `${'0f'.repeat(32)}\n`);
  writeFileSync(join(dir, 'idp.json'), JSON.stringify({ keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'ES256' }] }));
  writeFileSync(join(dir, 'issuer.pem'), generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(join(dir, 'keys.json'), JSON.stringify({ keys: [{ kid: 'c1', status: 'active', file: 'issuer.pem' }] }));
  const parsed = parseFilterConfig(
    issuanceConfigIn,
    {
      challengeSecretsFile: 'secret.hex',
      issuer: 'https://gatehouse.test.invalid',
      credentialKeysFile: 'keys.json',
      challengeTtlSeconds: 120,
      login: { issuer: 'https://idp.test.invalid', audience: 'super-app', jwksFile: 'idp.json', algorithms: ['ES256'] },
      attestation: { issuer: 'https://attest.test.invalid', audience: 'com.example.app', jwksFile: 'idp.json' },
    },
    { configDir: dir },
  );
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  const filter = compileIssuance(parsed.data, createFilterDeps({ now: () => NOW_MS }));
  const loginToken = (claims: Record<string, unknown>, audience = 'super-app'): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'idp-1' }).setIssuer('https://idp.test.invalid').setAudience(audience).setIssuedAt(NOW_MS / 1000).setExpirationTime(NOW_MS / 1000 + 300).sign(idp.privateKey);
  return { filter, loginToken };
}

function request(path: string, headers: [string, string][], options: { method?: string; bodyFollows?: boolean } = {}): RequestContext {
  return createRequestContext(
    { method: options.method ?? 'POST', authority: 'api.example.com', scheme: 'https', path, bodyFollows: options.bodyFollows ?? true },
    new HeaderMap(headers),
    {},
    { routeId: 'device', pathTemplate: `${BASE}*`, params: {} },
    () => new AbortController().signal,
  );
}

const json: [string, string] = ['content-type', 'application/json; charset=utf-8'];
const denialOf = (outcome: Outcome): string => (outcome.kind === 'deny' ? outcome.reason : outcome.kind);

test('at the headers, cheapest first: endpoint, method (with Allow), content type, declared size, a body at all', async (t) => {
  const { filter } = await setup(t);
  const headers = (ctx: RequestContext): Outcome => filter.onRequestHeaders(ctx) as Outcome;
  assert.equal(denialOf(headers(request(`${BASE}/other`, [json]))), 'route_not_found');
  const get = headers(request(`${BASE}/challenge`, [json], { method: 'GET' }));
  assert.equal(denialOf(get), 'method_not_allowed');
  assert.ok(get.kind === 'deny');
  assert.equal(get.headers?.['allow'], 'POST');
  assert.equal(get.headers?.['date'], new Date(NOW_MS).toUTCString(), 'gatehouse\'s clock, for the app to correct its own');
  assert.equal(denialOf(headers(request(`${BASE}/challenge`, [['content-type', 'text/plain']]))), 'content_type_unsupported');
  assert.equal(denialOf(headers(request(`${BASE}/credential`, [json]))), 'content_type_unsupported', 'credential takes application/jwt');
  assert.equal(denialOf(headers(request(`${BASE}/challenge`, [json, ['content-type', 'application/json']]))), 'content_type_unsupported', 'two Content-Types are none');
  assert.equal(denialOf(headers(request(`${BASE}/challenge`, [json, ['content-length', String(64 * 1024 + 1)]]))), 'body_too_large');
  assert.equal(denialOf(headers(request(`${BASE}/challenge`, [json, ['x-envoy-auth-partial-body', 'true']]))), 'body_too_large');
  assert.equal(denialOf(headers(request(`${BASE}/challenge`, [json, ['content-length', '20']], { bodyFollows: false }))), 'request_body_not_forwarded');
  assert.equal(denialOf(headers(request(`${BASE}/challenge`, [json], { bodyFollows: false }))), 'challenge_request_malformed');
  assert.equal(denialOf(headers(request(`${BASE}/challenge`, [json]))), 'continue');
});

test('challenge: a purpose gets a challenge that expires after the configured time; anything else is malformed', async (t) => {
  const { filter } = await setup(t);
  const ctx = request(`${BASE}/challenge`, [json]);
  const answered = (await filter.onRequestBody(ctx, Buffer.from('{"purpose":"enroll"}'))) as Outcome;
  assert.ok(answered.kind === 'respond');
  assert.equal(answered.status, 200);
  assert.equal(answered.headers?.['cache-control'], 'no-store');
  const body = JSON.parse(answered.body!.toString()) as { challenge: string; purpose: string; expiresAt: number };
  assert.equal(body.purpose, 'enroll');
  assert.equal(body.expiresAt, NOW_MS / 1000 + 120);
  assert.ok(body.challenge.length > 20);
  assert.deepEqual(ctx.actions, [{ filter: 'issuance', action: ISSUANCE_ACTIONS.enrollChallenge }]);
  for (const bad of ['{"purpose":"admin"}', '[]', 'not json', '']) {
    assert.equal(denialOf((await filter.onRequestBody(request(`${BASE}/challenge`, [json]), Buffer.from(bad))) as Outcome), 'challenge_request_malformed', bad);
  }
});

test('enroll: the login token is checked at the headers; its account is the claimant of a refused enrollment', async (t) => {
  const { filter, loginToken } = await setup(t);
  const enroll = (authorization?: string): RequestContext => request(`${BASE}/enroll`, authorization === undefined ? [json] : [json, ['authorization', authorization]]);
  const missing = (await filter.onRequestHeaders(enroll())) as Outcome;
  assert.ok(missing.kind === 'deny' && missing.reason === 'login_token_missing');
  assert.equal(missing.headers?.['www-authenticate'], 'Bearer realm="gatehouse"');
  for (const token of [await loginToken({ sub: 'user-1' }, 'another-app'), await loginToken({}), 'not.a.jwt']) {
    const refused = (await filter.onRequestHeaders(enroll(`Bearer ${token}`))) as Outcome;
    assert.equal(denialOf(refused), 'login_token_invalid');
  }
  const ctx = enroll(`Bearer ${await loginToken({ sub: 'user-1' })}`);
  assert.equal(denialOf((await filter.onRequestHeaders(ctx)) as Outcome), 'continue');
  assert.equal(denialOf((await filter.onRequestBody(ctx, Buffer.from('{not json'))) as Outcome), 'enrollment_malformed');
  assert.deepEqual(ctx.state.get(STATE.claimant), { subject: 'user-1', trust: 'credential' }); // a login token is replayable evidence: never enough to disable an account (issue 17)
});
