// Generates the worked example in docs/protocol/signing.md from deterministic keys, through the same
// API production uses, and the failure table from the code table. worked-example.test.ts checks the
// document still says exactly this; `node --import tsx src/protocol/signing/worked-example.ts --write`
// rewrites the generated blocks after an intended change.
import { createECDH, createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { base64urlEncode, utf8 } from '../common/base64.js';
import { parseDictionary, serializeInnerList, type InnerList } from '../common/sfv.js';
import { JWS_VERDICT_FORMAT, JWS_VERDICT_TYPE, jwsVerdictVerifier } from './attestation.js';
import { issueChallenge, type ChallengeSecrets } from './challenge.js';
import { SIGNING_FAILURES } from './codes.js';
import { computeContentDigest } from './content-digest.js';
import { CredentialCache, CredentialTrust, issueCredential } from './credential.js';
import { loginTokenHash, verifyEnrollment } from './enrollment.js';
import { signCompactJws } from './jws.js';
import { jwkThumbprint, signRaw, verifyRaw } from './keys.js';
import {
  CREDENTIAL_HEADER,
  CREDENTIAL_REQUEST_TYPE,
  ENROLLMENT_PROOF_TYPE,
  REQUIRED_COMPONENTS,
  SIGNATURE_TAG,
  normalizePublicJwk,
  normalizeX25519Jwk,
  type PublicJwk,
  type SignatureAlgorithm,
  type X25519PublicJwk,
} from './profile.js';
import { buildSignatureBase } from './signature-base.js';
import { createRequestVerifier, type SignedRequest } from './verifier.js';

export const DOC_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../../docs/protocol/signing.md');
export const BLOCKS = {
  example: ['<!-- generated:worked-example:begin -->', '<!-- generated:worked-example:end -->'],
  failures: ['<!-- generated:failure-table:begin -->', '<!-- generated:failure-table:end -->'],
} as const;

const NOW = 1_767_225_600; // 2026-01-01T00:00:00Z
const SIGNED_AT = NOW + 10;
const ATTEST_ISSUER = 'https://attest.example';
const LOGIN_ISSUER = 'https://id.example';
const APP = 'com.example.superapp';
const ISSUER = 'https://gatehouse.example';
const NONCE = 'd2b1c7Jx9Qp3Lw0zRk5mYa';
const BODY = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
const REQUEST = { method: 'POST', authority: 'api.example.com', path: '/v1/transfers', query: 'dry_run=1' };

/** A 32-byte seed per role: SHA-256 of "gatehouse worked example: <role>". */
const seed = (role: string): Buffer => createHash('sha256').update(`gatehouse worked example: ${role}`).digest();

function ed25519FromSeed(role: string): { privateKey: KeyObject; jwk: PublicJwk; privateJwk: Record<string, string> } {
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed(role)]), format: 'der', type: 'pkcs8' });
  const jwk = normalizePublicJwk(createPublicKey(privateKey).export({ format: 'jwk' }))!;
  return { privateKey, jwk, privateJwk: { ...jwk, d: base64urlEncode(seed(role)) } };
}

function x25519FromSeed(role: string): { jwk: X25519PublicJwk; privateJwk: Record<string, string>; raw: Buffer } {
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), seed(role)]), format: 'der', type: 'pkcs8' });
  const checked = normalizeX25519Jwk(createPublicKey(privateKey).export({ format: 'jwk' }));
  if (!checked.ok) throw new Error(`worked example X25519 key: ${checked.reason}`);
  return { jwk: checked.jwk, privateJwk: { ...checked.jwk, d: base64urlEncode(seed(role)) }, raw: Buffer.from(checked.raw) };
}

function p256FromSeed(role: string): { privateKey: KeyObject; jwk: PublicJwk; privateJwk: Record<string, string> } {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(seed(role)); // any 32 bytes below the group order; these are
  const point = ecdh.getPublicKey();
  const jwk: PublicJwk = { kty: 'EC', crv: 'P-256', x: base64urlEncode(point.subarray(1, 33)), y: base64urlEncode(point.subarray(33)) };
  const privateJwk = { ...jwk, d: base64urlEncode(seed(role)) };
  return { privateKey: createPrivateKey({ key: privateJwk, format: 'jwk' }), jwk, privateJwk };
}

const json = (value: unknown): string => JSON.stringify(value, null, 2);
const block = (lang: string, text: string): string => `\`\`\`${lang}\n${text}\n\`\`\``;
const decodeSegment = (segment: string): unknown => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));

export interface WorkedExample {
  readonly markdown: string;
  /** The P-256 request's signature base and public key, so a test can check a sample signature. */
  readonly p256: { readonly base: string; readonly publicKey: KeyObject; readonly signature: string };
}

function signedRequestParts(algorithm: SignatureAlgorithm, keyid: string, credential: string) {
  const params = new Map([
    ['created', { type: 'integer', value: SIGNED_AT }],
    ['expires', { type: 'integer', value: SIGNED_AT + 30 }],
    ['nonce', { type: 'string', value: NONCE }],
    ['keyid', { type: 'string', value: keyid }],
    ['alg', { type: 'string', value: algorithm }],
    ['tag', { type: 'string', value: SIGNATURE_TAG }],
  ] as const);
  const covered: InnerList = { kind: 'inner-list', items: REQUIRED_COMPONENTS.map((id) => ({ kind: 'item', value: { type: 'string', value: id }, params: new Map() })), params };
  const headers: Record<string, string> = { 'content-digest': computeContentDigest(utf8(BODY)), [CREDENTIAL_HEADER]: credential };
  const base = buildSignatureBase(covered, { ...REQUEST, header: (n) => headers[n] });
  if (!base.ok) throw new Error('worked example base failed');
  return { headers, base: base.base, signatureInput: `sig=${serializeInnerList(covered)}` };
}

/**
 * Builds the example. `p256Signature` is the sample ECDSA signature already in the document: ECDSA is
 * randomised, so the document keeps its sample as long as it verifies; a fresh one is made otherwise.
 */
export async function buildWorkedExample(p256Signature?: string): Promise<WorkedExample> {
  const attest = ed25519FromSeed('attestation service');
  const device = ed25519FromSeed('device key');
  const e2ee = x25519FromSeed('device e2ee key');
  const ephemeral = ed25519FromSeed('ephemeral key');
  const ephemeralP256 = p256FromSeed('ephemeral P-256 key');
  const issuerKey = ed25519FromSeed('gatehouse issuer');
  const identityProvider = ed25519FromSeed('identity provider');
  const secret = seed('challenge secret');
  const secrets: ChallengeSecrets = [secret];

  // 1. Enrollment
  const enrollChallenge = issueChallenge({ secrets, purpose: 'enroll', now: NOW, idBytes: new Uint8Array(16).fill(0x11) });
  const deviceId = jwkThumbprint(device.jwk);
  const verdict = await new SignJWT({ nonce: enrollChallenge.challenge, jkt: deviceId, integrity: 'strong' })
    .setProtectedHeader({ alg: 'EdDSA', typ: JWS_VERDICT_TYPE, kid: 'attest-1' })
    .setIssuer(ATTEST_ISSUER)
    .setAudience(APP)
    .setIssuedAt(NOW)
    .setExpirationTime(NOW + 120)
    .sign(attest.privateKey);
  // the app's login token (Ed25519 signatures are deterministic, so the example is stable); the proof binds its hash
  const loginToken = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: 'idp-1' })
    .setIssuer(LOGIN_ISSUER)
    .setAudience(APP)
    .setSubject('user-42')
    .setIssuedAt(NOW)
    .setExpirationTime(NOW + 3600)
    .sign(identityProvider.privateKey);
  const ath = loginTokenHash(loginToken);
  const proof = signCompactJws('ed25519', device.privateKey, ENROLLMENT_PROOF_TYPE, { chl: enrollChallenge.challenge, ath, e2eeKey: e2ee.jwk });
  const enrollmentRequest = { challenge: enrollChallenge.challenge, deviceKey: device.jwk, e2eeKey: e2ee.jwk, attestation: { format: JWS_VERDICT_FORMAT, evidence: verdict }, proof };
  const enrolled = await verifyEnrollment(enrollmentRequest, {
    challengeSecrets: secrets,
    verifiers: [jwsVerdictVerifier({ issuer: ATTEST_ISSUER, audience: APP, jwks: { keys: [{ ...attest.jwk, kid: 'attest-1', alg: 'EdDSA' }] } })],
    minIntegrity: 'device',
    subject: 'user-42',
    loginToken,
    now: NOW,
  });
  if (!enrolled.ok) throw new Error(`worked example enrollment failed: ${enrolled.code}`);
  if (!enrolled.boundToLogin) throw new Error('worked example enrollment is not bound to its login token');
  if (!e2ee.raw.equals(enrolled.device.e2eePublicKey ?? Buffer.alloc(0))) throw new Error('worked example enrollment lost the e2ee key');

  // 2. Credential (one per ephemeral key)
  const issuer = { issuer: ISSUER, kid: 'gh-example-1', privateKey: issuerKey.privateKey, lifetimeSeconds: 600 };
  const credentialFor = async (jwk: PublicJwk, idByte: number) => {
    const challenge = issueChallenge({ secrets, purpose: 'credential', now: NOW, idBytes: new Uint8Array(16).fill(idByte) });
    const request = signCompactJws('ed25519', device.privateKey, CREDENTIAL_REQUEST_TYPE, { chl: challenge.challenge, dev: deviceId, jwk });
    const issued = await issueCredential(request, { device: enrolled.device, challengeSecrets: secrets, issuer, now: NOW, jti: `example-${idByte}` });
    if (!issued.ok) throw new Error(`worked example credential failed: ${issued.code}`);
    return { challenge: challenge.challenge, request, credential: issued.credential };
  };
  const edCredential = await credentialFor(ephemeral.jwk, 0x22);
  const p256Credential = await credentialFor(ephemeralP256.jwk, 0x33);

  // 3. Signed requests
  const ed = signedRequestParts('ed25519', jwkThumbprint(ephemeral.jwk), edCredential.credential);
  const edSignature = `sig=:${Buffer.from(signRaw('ed25519', ephemeral.privateKey, utf8(ed.base))).toString('base64')}:`;
  const p256 = signedRequestParts('ecdsa-p256-sha256', jwkThumbprint(ephemeralP256.jwk), p256Credential.credential);
  const p256PublicKey = createPublicKey(ephemeralP256.privateKey);
  const sampleBytes = p256Signature === undefined ? undefined : /^sig=:([A-Za-z0-9+/=]+):$/.exec(p256Signature)?.[1];
  const keepSample = sampleBytes !== undefined && verifyRaw('ecdsa-p256-sha256', p256PublicKey, utf8(p256.base), Buffer.from(sampleBytes, 'base64'));
  const p256Sig = keepSample ? p256Signature! : `sig=:${Buffer.from(signRaw('ecdsa-p256-sha256', ephemeralP256.privateKey, utf8(p256.base))).toString('base64')}:`;

  // The generated example must itself pass the verifier, or the generator fails.
  const trust = new CredentialTrust(ISSUER, [{ kid: issuer.kid, publicKey: createPublicKey(issuerKey.privateKey) }]);
  const verify = createRequestVerifier({ trust, cache: new CredentialCache() });
  for (const [parts, signature] of [[ed, edSignature], [p256, p256Sig]] as const) {
    const all: Record<string, string> = { ...parts.headers, 'signature-input': parts.signatureInput, signature };
    const input: SignedRequest = { ...REQUEST, header: (n) => all[n], body: utf8(BODY), now: SIGNED_AT };
    const verdict = verify(input);
    if (!verdict.ok) throw new Error(`worked example request refused: ${verdict.code} ${verdict.detail}`);
  }
  if (parseDictionary(p256Sig) === undefined) throw new Error('sample signature does not parse');

  const [credHeader, credPayload] = edCredential.credential.split('.') as [string, string];
  const markdown = [
    `All values below come from \`src/protocol/signing/worked-example.ts\`; a test fails if this section and the code disagree. Every private key is the SHA-256 of the UTF-8 string \`gatehouse worked example: <role>\` (used as the Ed25519 seed or the P-256 scalar). Times: \`now\` = ${NOW} (2026-01-01T00:00:00Z); the request is signed at ${SIGNED_AT}.`,
    '',
    '### Keys',
    '',
    '| role | private JWK (test only) | RFC 7638 thumbprint |',
    '|---|---|---|',
    ...[
      ['attestation service (kid `attest-1`)', attest],
      ['device key', device],
      ['ephemeral request key (Ed25519)', ephemeral],
      ['ephemeral request key (P-256)', ephemeralP256],
      ['gatehouse credential issuer (kid `gh-example-1`)', issuerKey],
      ['identity provider (login tokens, kid `idp-1`)', identityProvider],
    ].map(([role, key]) => {
      const k = key as typeof attest;
      return `| ${role as string} | \`${JSON.stringify(k.privateJwk)}\` | \`${jwkThumbprint(k.jwk)}\` |`;
    }),
    `| device e2ee key (X25519) | \`${JSON.stringify(e2ee.privateJwk)}\` | none needed: its e2ee device key id is the device id |`,
    '',
    `Challenge MAC secret (hex): \`${secret.toString('hex')}\`. Challenge ids are 16 bytes of 0x11 (enrollment), 0x22 and 0x33 (credentials) instead of random.`,
    '',
    '### 1. Enrollment',
    '',
    'The challenge gatehouse issued for enrollment:',
    '',
    block('text', enrollChallenge.challenge),
    '',
    `Its MAC is HMAC-SHA-256(secret, \`gatehouse-challenge-v1\\n${enrollChallenge.challenge.split('.').slice(0, 3).join('.')}\`). The device id is the device key thumbprint \`${deviceId}\`. The attestation service returns this verdict (header and claims decoded below):`,
    '',
    block('text', verdict),
    '',
    block('json', `${json(decodeSegment(verdict.split('.')[0]!))}\n${json(decodeSegment(verdict.split('.')[1]!))}`),
    '',
    `The app is logged in as \`user-42\`; its login token (the identity provider's JWT, sent as \`Authorization: Bearer\` with the enrollment):`,
    '',
    block('text', loginToken),
    '',
    `Its \`ath\` is base64url(SHA-256(the token's ASCII bytes)) = \`${ath}\`.`,
    '',
    'Enrollment request body (`proof` is the device key signing `{"chl": <challenge>, "ath": <the login token hash>, "e2eeKey": <the same X25519 JWK as the body>}` with header `{"alg":"EdDSA","typ":"gh-enrollment+jwt"}`):',
    '',
    block('json', json(enrollmentRequest)),
    '',
    'The proof payload, decoded:',
    '',
    block('json', json(decodeSegment(proof.split('.')[1]!))),
    '',
    `The enrolled device record carries the e2ee key as raw bytes (hex) \`${e2ee.raw.toString('hex')}\`; this device's e2ee envelopes name device key id \`${deviceId}\` (the device id: ${deviceId.length} bytes of visible ASCII), and gatehouse authenticates them with that key.`,
    '',
    '### 2. Credential',
    '',
    'Credential challenge and request (device key; header `{"alg":"EdDSA","typ":"gh-credential-request+jwt"}`, claims `chl`, `dev`, `jwk`):',
    '',
    block('text', `${edCredential.challenge}\n\n${edCredential.request}`),
    '',
    block('json', json(decodeSegment(edCredential.request.split('.')[1]!))),
    '',
    'The credential gatehouse returns, then its header and claims:',
    '',
    block('text', edCredential.credential),
    '',
    block('json', `${json(decodeSegment(credHeader))}\n${json(decodeSegment(credPayload))}`),
    '',
    '### 3. A signed request (Ed25519 request key)',
    '',
    `\`POST https://api.example.com/v1/transfers?dry_run=1\` with body \`${BODY}\` (${utf8(BODY).length} bytes, no trailing newline). Content-Digest: \`${ed.headers['content-digest']!}\`. Signature base (lines end with LF; no LF after the last line):`,
    '',
    block('text', ed.base),
    '',
    'The request as sent:',
    '',
    block(
      'http',
      [
        'POST /v1/transfers?dry_run=1 HTTP/1.1',
        'Host: api.example.com',
        'Content-Type: application/json',
        `Content-Digest: ${ed.headers['content-digest']!}`,
        `Device-Credential: ${edCredential.credential}`,
        `Signature-Input: ${ed.signatureInput}`,
        `Signature: ${edSignature}`,
        '',
        BODY,
      ].join('\n'),
    ),
    '',
    '### 4. The same request with the P-256 request key',
    '',
    `Its credential (challenge id 0x33…, jti \`example-51\`):`,
    '',
    block('text', p256Credential.credential),
    '',
    'Signature base:',
    '',
    block('text', p256.base),
    '',
    'A sample signature — ECDSA is randomised, so yours will differ; it must be the 64-byte r‖s, base64 in a byte sequence, and it must verify with the P-256 key above:',
    '',
    block('text', `Signature-Input: ${p256.signatureInput}\nSignature: ${p256Sig}`),
  ].join('\n');
  return { markdown, p256: { base: p256.base, publicKey: p256PublicKey, signature: p256Sig } };
}

export function failureTableMarkdown(): string {
  return [
    '| code | HTTP status | meaning |',
    '|---|---|---|',
    ...Object.entries(SIGNING_FAILURES).map(([code, { status, meaning }]) => `| \`${code}\` | ${status} | ${meaning.replaceAll('|', '\\|')} |`),
  ].join('\n');
}

/** The text between a block's markers, or undefined when the markers are missing. */
export function extractBlock(doc: string, [begin, end]: readonly [string, string]): string | undefined {
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  return from < 0 || to < from ? undefined : doc.slice(from + begin.length, to).replace(/^\n/, '').replace(/\n$/, '');
}

export function replaceBlock(doc: string, [begin, end]: readonly [string, string], content: string): string {
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`markers ${begin} … ${end} missing`);
  return `${doc.slice(0, from + begin.length)}\n${content}\n${doc.slice(to)}`;
}

/** The sample P-256 signature currently in the document, if any. */
export function documentedP256Signature(doc: string): string | undefined {
  const section = extractBlock(doc, BLOCKS.example) ?? '';
  return /Signature: (sig=:[A-Za-z0-9+/=]+:)\n```\s*$/.exec(section)?.[1];
}

if (process.argv.includes('--write')) {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const example = await buildWorkedExample(documentedP256Signature(doc));
  writeFileSync(DOC_PATH, replaceBlock(replaceBlock(doc, BLOCKS.example, example.markdown), BLOCKS.failures, failureTableMarkdown()));
}
