// Fuzzing (fast-check) device credentials on a signed route, over ext_proc and ext_authz. Each
// request is signed correctly by the world's ephemeral key, and its Device-Credential names that key
// (cnf) and the enrolled device: the credential is the only thing wrong with it. Forged credentials
// (alg confusion: none, HS256 keyed with the issuer's public key in every encoding, an attacker's
// ES256/EdDSA key, an embedded jwk; unknown or odd kids and typs; random claims), credentials the
// real issuer signed with claims that must fail (expired, not yet valid, too long-lived, another
// issuer, another key, mistyped), byte mutations of the real credential and broken encodings. The
// property: always a documented denial, never an exception, never the upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { exportJWK } from 'jose';
import { signRequest } from '../../sdk/app/signing.js';
import { base64urlDecode, base64urlEncode } from '../../src/protocol/common/base64.js';
import { CREDENTIAL_TYPE, MAX_CREDENTIAL_LIFETIME_SECONDS } from '../../src/protocol/signing/profile.js';
import { createWorld, derFromRaw } from '../../src/protocol/signing/test-support.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { endToEnd } from '../support/gatehouse.js';
import { AUTHORITY, documentedDenial, fuzzParameters, fuzzRoutes, Tally, watchProcessFaults } from '../support/fuzz.js';

const RUNS = 200;
const PATH = '/pay/transfer';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const json = (value: unknown): string => base64urlEncode(Buffer.from(JSON.stringify(value)));

/** Compact JWS over whatever header and payload, with the given signing function. */
function compact(header: unknown, payload: unknown, signWith: (input: Buffer) => Uint8Array): string {
  const input = `${json(header)}.${json(payload)}`;
  return `${input}.${base64urlEncode(signWith(Buffer.from(input)))}`;
}

const es256 = (key: KeyObject) => (input: Buffer): Uint8Array => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
const eddsa = (key: KeyObject) => (input: Buffer): Uint8Array => sign(null, input, key);
const hs256 = (secret: Buffer | string) => (input: Buffer): Uint8Array => createHmac('sha256', secret).update(input).digest();

test('forged, mis-claimed, mutated and mis-encoded device credentials on a signed route: always a documented denial, never the upstream, over ext_proc and ext_authz (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await fuzzRoutes(world));
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });

  const [realHeader, realPayload, realSignature] = world.credential.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(base64urlDecode(realPayload)!).toString()) as Record<string, unknown>;
  const header = JSON.parse(Buffer.from(base64urlDecode(realHeader)!).toString()) as Record<string, unknown>;
  const issuerPublic = world.issuerKey.publicKey;
  const issuerJwk = await exportJWK(issuerPublic);
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const attackerEd = generateKeyPairSync('ed25519');
  const attackerJwk = await exportJWK(attacker.publicKey);
  const otherKeyCnf = { jkt: 'not-the-thumbprint', jwk: attackerJwk };

  /** the request as the app sends it, signed by the ephemeral key the credential names */
  async function requestWith(credential: string): Promise<ClientRequest> {
    const signing = { method: 'GET', authority: AUTHORITY, path: PATH, query: '' };
    let headers: Record<string, string>;
    try {
      headers = await signRequest(signing, { credential, signer: world.ephemeralSigner, now: nowSeconds() });
    } catch {
      // a credential the SDK cannot put in a signature base: sent beside a real signature instead
      headers = { ...(await signRequest(signing, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() })), 'device-credential': credential };
    }
    return { method: 'GET', path: PATH, authority: AUTHORITY, headers: Object.entries(headers) };
  }

  async function send(credential: string, via: 'ext_proc' | 'ext_authz'): Promise<{ status: number; reason: string | undefined; upstream: boolean; ok: boolean }> {
    const request = await requestWith(credential);
    if (via === 'ext_proc') {
      const r = await e2e.envoy.request(request);
      return { status: r.status, reason: get(r.headers, 'x-gatehouse-reason'), upstream: r.upstreamRequest !== undefined, ok: r.status < 400 };
    }
    const r = await e2e.authz.request(request);
    return { status: r.status, reason: get(r.headers, 'x-gatehouse-reason'), upstream: r.upstreamRequest !== undefined, ok: r.outcome === 'ok' };
  }

  // the real credential passes: the requests are right but for what the fuzzer changes
  for (const via of ['ext_proc', 'ext_authz'] as const) assert.equal((await send(world.credential, via)).ok, true, `the real credential passes over ${via}`);

  const odd = fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom(-1, 0, 1.5, 1e300, Number.MAX_SAFE_INTEGER + 2, '1', null, [], {}));
  const forgedHeader = fc.record(
    {
      alg: fc.oneof(fc.constantFrom('ES256', 'EdDSA', 'HS256', 'none', 'None', 'RS256', 'ES384', ''), fc.string({ maxLength: 8 })),
      typ: fc.oneof(fc.constant(CREDENTIAL_TYPE), fc.constantFrom('JWT', 'gh-credential-request+jwt', ''), fc.string({ maxLength: 8 })),
      kid: fc.oneof(fc.constant(world.issuerKey.kid), fc.constantFrom('other', '__proto__', 'constructor', 'toString'), odd),
    },
    { requiredKeys: [] },
  ).chain((h) => fc.option(fc.constantFrom<Record<string, unknown>>({ jwk: attackerJwk }, { jku: 'https://evil.example/jwks' }, { x5c: ['MIIB'] }, { crit: ['exp'] }, { b64: false }), { nil: undefined }).map((extra) => ({ ...h, ...extra })));
  const forgedClaims = fc.array(fc.tuple(fc.constantFrom('iss', 'sub', 'dev', 'lvl', 'cnf', 'iat', 'exp', 'jti'), fc.option(odd, { nil: undefined })), { maxLength: 3 }).map((changes) => {
    let out: Record<string, unknown> = { ...claims };
    for (const [name, value] of changes) {
      out = value === undefined ? Object.fromEntries(Object.entries(out).filter(([key]) => key !== name)) : { ...out, [name]: value };
    }
    return out;
  });
  // signatures an attacker can make: none of them by the issuer's private key
  const forgedSigner = fc.constantFrom<[string, (input: Buffer) => Uint8Array]>(
    ['attacker ES256', es256(attacker.privateKey)],
    ['attacker EdDSA', eddsa(attackerEd.privateKey)],
    ['HS256 keyed with the issuer SPKI PEM', hs256(issuerPublic.export({ format: 'pem', type: 'spki' }).toString())],
    ['HS256 keyed with the issuer SPKI DER', hs256(issuerPublic.export({ format: 'der', type: 'spki' }))],
    ['HS256 keyed with the issuer JWK', hs256(JSON.stringify(issuerJwk))],
    ['HS256 keyed with the issuer point', hs256(Buffer.concat([Buffer.from([4]), Buffer.from(base64urlDecode(issuerJwk.x!)!), Buffer.from(base64urlDecode(issuerJwk.y!)!)]))],
    ['no signature', () => new Uint8Array(0)],
    ['the real credential\'s signature', () => base64urlDecode(realSignature)!],
    ['the real signature in DER', () => derFromRaw(base64urlDecode(realSignature)!)],
  );
  const forged = fc.tuple(forgedHeader, forgedClaims, forgedSigner).map(([h, c, [how, signWith]]) => ({ how: `forged (${how})`, credential: compact(h, c, signWith) }));

  // signed by the real issuer key, with a claim that must make it fail
  const now = nowSeconds();
  const invalidating = fc.constantFrom<[string, Record<string, unknown>, Record<string, unknown>]>(
    ['expired', { iat: now - 200, exp: now - 100 }, {}],
    ['not yet valid', { iat: now + 3600, exp: now + 3700 }, {}],
    ['too long-lived', { iat: now, exp: now + MAX_CREDENTIAL_LIFETIME_SECONDS + 1 }, {}],
    ['exp before iat', { iat: now, exp: now - 1 }, {}],
    ['another issuer', { iss: 'https://evil.example' }, {}],
    ['another key in cnf', { cnf: otherKeyCnf }, {}],
    ['no cnf', { cnf: undefined }, {}],
    ['cnf.jkt of another key', { cnf: { ...(claims['cnf'] as object), jkt: 'AAAA' } }, {}],
    ['an unknown integrity level', { lvl: 'super' }, {}],
    ['sub not a string', { sub: 42 }, {}],
    ['iat a string', { iat: String(now) }, {}],
    ['an unknown device', { dev: 'device-that-was-never-enrolled' }, {}],
    ['typ of a credential request', {}, { typ: 'gh-credential-request+jwt' }],
    ['alg EdDSA over an ES256 signature', {}, { alg: 'EdDSA' }],
    ['an unknown kid', {}, { kid: 'rotated-out' }],
  );
  const misclaimed = fc.array(invalidating, { minLength: 1, maxLength: 3 }).map((chosen) => {
    const c: Record<string, unknown> = { ...claims };
    const h: Record<string, unknown> = { ...header };
    for (const [, claimChanges, headerChanges] of chosen) {
      Object.assign(c, claimChanges);
      Object.assign(h, headerChanges);
    }
    return { how: `issuer-signed, ${chosen.map(([what]) => what).join(' + ')}`, credential: compact(h, JSON.parse(JSON.stringify(c)) as unknown, es256(world.issuerKey.privateKey)) };
  });

  // the real credential with bytes changed inside one of its decoded parts, re-encoded canonically
  const mutated = fc.tuple(fc.constantFrom(0, 1, 2), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom('flip', 'cut', 'append')).map(([part, at, value, how]) => {
    const parts = world.credential.split('.');
    const bytes = Buffer.from(base64urlDecode(parts[part]!)!);
    const i = at % bytes.length;
    let changed: Buffer;
    if (how === 'flip') {
      changed = Buffer.from(bytes);
      changed[i] = changed[i]! ^ value;
    } else if (how === 'cut') changed = bytes.subarray(0, i);
    else changed = Buffer.concat([bytes, Buffer.from([value])]);
    parts[part] = base64urlEncode(changed);
    return { how: `the real credential, part ${part} ${how} at ${i}`, credential: parts.join('.') };
  });

  // broken encodings of the real one: padding, standard base64, extra parts, prefixes, too long
  const encodings = fc.constantFrom(
    ['padded', `${realHeader}==.${realPayload}.${realSignature}`],
    ['standard base64 alphabet', world.credential.replaceAll('-', '+').replaceAll('_', '/')],
    ['four parts', `${world.credential}.`],
    ['two parts', `${realHeader}.${realPayload}`],
    ['bearer prefix', `Bearer ${world.credential}`],
    ['twice, comma-joined', `${world.credential}, ${world.credential}`],
    ['over 8 KiB', `${realHeader}.${realPayload}${'A'.repeat(9000)}.${realSignature}`],
    ['empty', ''],
  ).filter(([, credential]) => credential !== world.credential).map(([what, credential]) => ({ how: `encoding: ${what}`, credential }));

  const input = fc.record({
    attempt: fc.oneof({ weight: 4, arbitrary: forged }, { weight: 3, arbitrary: misclaimed }, { weight: 3, arbitrary: mutated.filter((m) => m.credential !== world.credential) }, { weight: 1, arbitrary: encodings }),
    via: fc.constantFrom('ext_proc' as const, 'ext_authz' as const),
  });

  const reasons = new Tally();
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(input, async ({ attempt, via }) => {
      sent++;
      const answer = await send(attempt.credential, via);
      assert.equal(answer.upstream, false, `${attempt.how} reached the upstream over ${via}`);
      assert.equal(answer.ok, false, `${attempt.how} allowed over ${via}`);
      const denial = documentedDenial(answer.status, answer.reason);
      assert.ok(denial.ok, `${attempt.how} over ${via}: ${denial.ok ? '' : denial.why}`);
      reasons.add(denial.reason);
    }),
    fuzzParameters(RUNS),
  );
  faults.assertNone();
  for (const via of ['ext_proc', 'ext_authz'] as const) assert.equal((await send(world.credential, via)).ok, true, `the real credential still passes over ${via}`);
  t.diagnostic(`fuzz credentials: ${sent} requests, 0 let through; denials: ${reasons.toString()}`);
});
