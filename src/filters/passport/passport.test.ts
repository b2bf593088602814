// The passport filter on its own: a passport only for the identity `signed` handed on, its claims,
// where in the request it is issued, and the JWKS passportKeys publishes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../../test/support/temp-dir.js';
import { createRequestContext } from '../../pipeline/context.js';
import { parseFilterConfig } from '../../pipeline/filter-config.js';
import { HeaderMap } from '../../pipeline/headers.js';
import { STATE } from '../../pipeline/state.js';
import type { Outcome, RequestContext } from '../../pipeline/types.js';
import { compilePassportPolicy, verifyPassportWithKeys, type PassportKeyring } from '../../protocol/passport/index.js';
import { createFilterDeps } from '../deps.js';
import { passportConfigIn, passportKeysConfig, type PassportConfig } from './config.js';
import { compilePassport, compilePassportKeys, JWKS_MEDIA_TYPE } from './passport.js';

const ISSUER = 'https://gatehouse.test.invalid';
const IDENTITY = { subject: 'user-42', deviceId: 'dev-7', integrityLevel: 'strong', keyId: 'jkt-1' } as const;

/** a key manifest in a temporary directory, named relative to it as a config file beside it would */
function configIn(t: { after: (fn: () => void) => void }): PassportConfig {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'signing.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(join(dir, 'keys.json'), JSON.stringify({ keys: [{ kid: 'k-1', status: 'active', file: 'signing.pem' }] }));
  const parsed = parseFilterConfig(passportConfigIn, { audience: 'payments', issuer: ISSUER, keysFile: 'keys.json' }, { configDir: dir });
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  return parsed.data;
}

function request(bodyFollows: boolean): RequestContext {
  return createRequestContext(
    { method: 'POST', authority: 'api.example.com', scheme: 'https', path: '/pay', bodyFollows },
    new HeaderMap([['x-request-id', 'req-1']]),
    {},
    { routeId: 'pay', pathTemplate: '/pay', params: {} },
    () => new AbortController().signal,
  );
}

function passportOf(ctx: RequestContext, keyring: PassportKeyring) {
  const sets = ctx.requestEdits.drain().sets.filter((s) => s.name === 'x-passport');
  assert.equal(sets.length, 1, 'one passport, set (not appended)');
  assert.equal(sets[0]!.append, false);
  const keys = new Map(keyring.keys.map((key) => [key.kid, { kid: key.kid, alg: key.alg, publicKey: key.publicKey }]));
  return verifyPassportWithKeys(sets[0]!.value, keys, compilePassportPolicy({ audience: 'payments', issuer: ISSUER }), Date.now() / 1000);
}

test('the identity `signed` handed on becomes a passport for the route\'s audience, with the request id and the integrity as itl', async (t) => {
  const config = configIn(t);
  const filter = compilePassport(config, createFilterDeps());
  const ctx = request(false);
  ctx.state.set(STATE.signedIdentity, IDENTITY);
  assert.deepEqual(await filter.onRequestHeaders(ctx), { kind: 'continue' });
  const verdict = passportOf(ctx, config.keysFile.value);
  assert.ok(verdict.ok, verdict.ok ? '' : verdict.detail);
  const { sub, aud, txn, dev, amr, aal, itl } = verdict.claims as unknown as Record<string, unknown>;
  // txn is gatehouse's own decision id, never the client's x-request-id
  assert.deepEqual({ sub, aud, txn, dev, amr, aal, itl }, { sub: 'user-42', aud: 'payments', txn: ctx.decisionId, dev: { id: 'dev-7' }, amr: [], aal: 0, itl: 3 });
});

test('no verified identity, no passport: 401 passport_identity_missing (never a passport for an unverified caller)', (t) => {
  const filter = compilePassport(configIn(t), createFilterDeps());
  const ctx = request(false);
  const outcome = filter.onRequestHeaders(ctx) as Outcome;
  assert.ok(outcome.kind === 'deny');
  assert.equal(outcome.reason, 'passport_identity_missing');
  assert.equal(ctx.requestEdits.isEmpty, true);
});

test('with a body to come, it waits for the body phase, where `signed` hands the identity on; once issued it is not issued again', async (t) => {
  const config = configIn(t);
  const filter = compilePassport(config, createFilterDeps());
  const waiting = request(true);
  assert.deepEqual(filter.onRequestHeaders(waiting), { kind: 'continue' });
  const refused = (await filter.onRequestBody(waiting)) as Outcome;
  assert.ok(refused.kind === 'deny' && refused.reason === 'passport_identity_missing', 'still no identity after the body: refused');

  const late = request(true);
  assert.deepEqual(filter.onRequestHeaders(late), { kind: 'continue' });
  late.state.set(STATE.signedIdentity, IDENTITY);
  assert.deepEqual(await filter.onRequestBody(late), { kind: 'continue' });
  assert.ok(passportOf(late, config.keysFile.value).ok);

  const early = request(true);
  early.state.set(STATE.signedIdentity, IDENTITY);
  await filter.onRequestHeaders(early);
  assert.deepEqual(await filter.onRequestBody(early), { kind: 'continue' });
  assert.ok(passportOf(early, config.keysFile.value).ok, 'exactly one passport across both phases');
});

test('passportKeys answers with the JWKS of the manifest, as application/jwk-set+json with its max-age', (t) => {
  const config = configIn(t);
  const keys = compilePassportKeys(passportKeysConfig.parse({ keysFile: config.keysFile.file, maxAgeSeconds: 120 }));
  const answer = keys.onRequestHeaders();
  assert.ok(answer.kind === 'respond');
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.headers, { 'content-type': JWKS_MEDIA_TYPE, 'cache-control': 'public, max-age=120' });
  const jwks = JSON.parse(answer.body!.toString()) as { keys: { kid: string; d?: string }[] };
  assert.deepEqual(jwks.keys.map((k) => k.kid), ['k-1']);
  assert.ok(jwks.keys.every((k) => k.d === undefined), 'no private part is published');
});
