// The spec's worked example and failure table, generated from the code: deterministic Ed25519 keys
// (EdDSA signatures are deterministic, RFC 8032), a fixed clock, and the real issuer. gen-doc.ts
// writes these sections into docs/protocol/passport.md; doc.test.ts checks the document still says
// exactly what the code produces.
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { PASSPORT_FAILURES } from './codes.js';
import { createPassportIssuer } from './issue.js';
import { ed25519PrivateKeyFromSeed, jwksDocument, keyringFromKeys, parseJwks, type PassportKey } from './keys.js';
import { compilePassportPolicy, verifyPassportWithKeys } from './verify.js';
import { FIXED_NOW_SECONDS, SAMPLE_ISSUER, SAMPLE_SUBJECT } from './testing.js';

/** RFC 8037 Appendix A.1's Ed25519 key, so an implementer can cross-check key import against the RFC. */
const ACTIVE_PRIVATE_JWK = {
  kty: 'OKP', crv: 'Ed25519', d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
} as const;
const PREVIOUS_SEED_LABEL = 'gatehouse passport worked example: previous key';

export const EXAMPLE_ACTIVE_KID = 'example-2026-11';
export const EXAMPLE_PREVIOUS_KID = 'example-2026-10';
export const EXAMPLE_AUDIENCE = SAMPLE_SUBJECT.aud;

export interface WorkedExample {
  readonly activePrivateJwk: Record<string, string>;
  readonly previousPrivateJwk: Record<string, string>;
  readonly headerJson: string;
  readonly encodedHeader: string;
  readonly payloadJson: string;
  readonly encodedPayload: string;
  readonly signingInput: string;
  readonly signatureHex: string;
  readonly encodedSignature: string;
  readonly token: string;
  readonly jwksJson: string;
}

export function buildWorkedExample(): WorkedExample {
  const activePrivate = createPrivateKey({ key: ACTIVE_PRIVATE_JWK, format: 'jwk' });
  const previousPrivate = ed25519PrivateKeyFromSeed(createHash('sha256').update(PREVIOUS_SEED_LABEL).digest());
  const keys: PassportKey[] = [
    { kid: EXAMPLE_ACTIVE_KID, alg: 'EdDSA', status: 'active', privateKey: activePrivate, publicKey: createPublicKey(activePrivate) },
    { kid: EXAMPLE_PREVIOUS_KID, alg: 'EdDSA', status: 'published', privateKey: previousPrivate, publicKey: createPublicKey(previousPrivate) },
  ];
  const keyring = keyringFromKeys(keys);
  const issuer = createPassportIssuer({ keyring, issuer: SAMPLE_ISSUER, lifetimeSeconds: 30, now: () => FIXED_NOW_SECONDS * 1000 });
  const token = issuer.issuePassport(SAMPLE_SUBJECT);
  const [encodedHeader, encodedPayload, encodedSignature] = token.split('.') as [string, string, string];

  // the example must be a passport the verifier accepts at its own iat
  const parsed = parseJwks(JSON.parse(JSON.stringify(issuer.jwks)));
  const verdict = parsed.ok && verifyPassportWithKeys(token, parsed.keys, compilePassportPolicy({ audience: EXAMPLE_AUDIENCE, issuer: SAMPLE_ISSUER }), FIXED_NOW_SECONDS);
  if (verdict === false || !verdict.ok) throw new Error('the worked example does not verify');

  const privateJwk = (key: PassportKey): Record<string, string> => {
    const { kty, crv, x, d } = key.privateKey!.export({ format: 'jwk' });
    return { kty: kty!, crv: crv!, x: x!, d: d!, kid: key.kid };
  };
  return {
    activePrivateJwk: privateJwk(keys[0]!),
    previousPrivateJwk: privateJwk(keys[1]!),
    headerJson: Buffer.from(encodedHeader, 'base64url').toString('utf8'),
    encodedHeader,
    payloadJson: Buffer.from(encodedPayload, 'base64url').toString('utf8'),
    encodedPayload,
    signingInput: `${encodedHeader}.${encodedPayload}`,
    signatureHex: Buffer.from(encodedSignature, 'base64url').toString('hex'),
    encodedSignature,
    token,
    jwksJson: JSON.stringify(jwksDocument(keyring), null, 2),
  };
}

const block = (lang: string, text: string): string => `\`\`\`${lang}\n${text}\n\`\`\``;

/** Long single-line values wrapped at 76 for reading; the text says they are one line. */
const wrap = (text: string): string => text.match(/.{1,76}/g)?.join('\n') ?? text;

export function renderWorkedExample(): string {
  const e = buildWorkedExample();
  return [
    `Keys (private JWKs — example only, never use them). The active key is RFC 8037 Appendix A.1's; the previous key's`,
    `32-byte seed is SHA-256("${PREVIOUS_SEED_LABEL}").`,
    '',
    block('json', JSON.stringify(e.activePrivateJwk, null, 2)),
    '',
    block('json', JSON.stringify(e.previousPrivateJwk, null, 2)),
    '',
    `Clock: now = iat = ${FIXED_NOW_SECONDS} (${new Date(FIXED_NOW_SECONDS * 1000).toISOString()}); lifetime 30 s; issuer \`${SAMPLE_ISSUER}\`.`,
    '',
    'Header, exactly these bytes (UTF-8, no whitespace, this member order):',
    '',
    block('json', e.headerJson),
    '',
    'BASE64URL(header):',
    '',
    block('text', e.encodedHeader),
    '',
    'Payload, exactly these bytes:',
    '',
    block('json', e.payloadJson),
    '',
    'BASE64URL(payload) (one line, wrapped here at 76 characters):',
    '',
    block('text', wrap(e.encodedPayload)),
    '',
    'Signing input = BASE64URL(header) "." BASE64URL(payload), ASCII (one line, wrapped):',
    '',
    block('text', wrap(e.signingInput)),
    '',
    'Ed25519 signature of the signing input with the active key (64 bytes, hex):',
    '',
    block('text', wrap(e.signatureHex)),
    '',
    'BASE64URL(signature):',
    '',
    block('text', wrap(e.encodedSignature)),
    '',
    'The passport, as sent in `x-passport` (one line, wrapped):',
    '',
    block('text', wrap(e.token)),
    '',
    'The JWKS document gatehouse serves (active key first, the previous key still published):',
    '',
    block('json', e.jwksJson),
  ].join('\n');
}

export function renderFailureTable(): string {
  const rows = Object.entries(PASSPORT_FAILURES).map(([code, { status, meaning }]) => `| \`${code}\` | ${status} | ${meaning.replaceAll('|', '\\|')} |`);
  return ['| code | HTTP status | meaning |', '|---|---|---|', ...rows].join('\n');
}

export const GENERATED_SECTIONS = { 'worked-example': renderWorkedExample, 'failure-table': renderFailureTable } as const;

/** The document with every generated section replaced by what the code renders now. */
export function regenerate(document: string): string {
  let out = document;
  for (const [name, render] of Object.entries(GENERATED_SECTIONS)) {
    const begin = `<!-- BEGIN GENERATED ${name} -->`;
    const end = `<!-- END GENERATED ${name} -->`;
    const from = out.indexOf(begin);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`the document has no ${begin} … ${end} section`);
    out = `${out.slice(0, from + begin.length)}\n${render()}\n${out.slice(to)}`;
  }
  return out;
}
