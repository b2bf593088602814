import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { AS_WRITTEN, fileReadAtLoad, schemaPerScope, type FileRead, type FilterConfigScope } from '../../pipeline/filter-config.js';
import { importPublicJwk } from '../../protocol/signing/keys.js';
import { DEFAULT_FRESHNESS, INTEGRITY_LEVELS, SIGNATURE_ALGORITHMS } from '../../protocol/signing/profile.js';
import { readCredentialKeyring } from '../../protocol/signing/credential-keys.js';

/** One credential-issuer public key, by the kid credentials name in their JWS header. */
export interface IssuerKey {
  readonly kid: string;
  readonly publicKey: KeyObject;
}

/** Why a JWK cannot be a credential-issuer key; undefined when it can. Never accepts a private key. */
function issuerKeyProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JWK object';
  const jwk = value as Record<string, unknown>;
  if ('d' in jwk) return 'is a private key (has "d"): configure the public half only; the private key stays with the credential issuer';
  if (typeof jwk['kid'] !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(jwk['kid'])) return 'needs a "kid" of 1-128 visible ASCII characters (credentials name their issuer key by it)';
  if (importPublicJwk(value) === undefined) return 'is not a P-256 (kty EC) or Ed25519 (kty OKP) public JWK with 32-byte base64url coordinates on its curve';
  return undefined;
}

function toIssuerKey(value: unknown): IssuerKey {
  const jwk = value as Record<string, unknown>;
  return { kid: jwk['kid'] as string, publicKey: importPublicJwk(value)!.key };
}

/** Reads a JWKS file ({"keys": [...]}) at config load; a problem is a message naming the file. */
function readJwksFile(file: string): FileRead<IssuerKey[]> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { ok: false, message: `cannot read JWKS file ${file}: ${error instanceof Error ? error.message : String(error)}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `JWKS file ${file} is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) return { ok: false, message: `JWKS file ${file} must be {"keys": [...]} with at least one key` };
  for (const [index, key] of keys.entries()) {
    const problem = issuerKeyProblem(key);
    if (problem !== undefined) return { ok: false, message: `JWKS file ${file}: keys[${index}] ${problem}` };
  }
  return { ok: true, value: keys.map(toIssuerKey) };
}

const inlineKey = z.record(z.string(), z.unknown()).superRefine((jwk, ctx) => {
  const problem = issuerKeyProblem(jwk);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * A route's `signed` entry: the dynamic-security per-request check (docs/protocol/signing.md).
 * The issuer keys are public JWKs, inline and/or from a JWKS file read when the config is loaded
 * (and again on every reload, which is how issuer keys rotate).
 */
export const signedConfigIn = schemaPerScope((scope: FilterConfigScope) =>
  z
    .strictObject({
      /** `iss` of the credentials gatehouse accepts */
      issuer: z.string().min(1, 'must not be empty'),
      /** inline public JWKs of the credential issuer, each with its kid */
      issuerKeys: z.array(inlineKey).default([]),
      /** a JWKS file ({"keys": [...]}) of the credential issuer's public keys; a relative path is from the config file's directory */
      issuerKeysFile: fileReadAtLoad(readJwksFile, scope).optional(),
      /**
       * the credential issuer's key manifest, the same file the `issuance` filter signs with: the public
       * half of every key in it (active and published) is trusted, so this route accepts exactly the
       * credentials gatehouse issues; relative to the config file's directory
       */
      credentialKeysFile: fileReadAtLoad(readCredentialKeyring, scope).optional(),
      allowedAlgorithms: z.array(z.enum(SIGNATURE_ALGORITHMS)).min(1, 'must allow at least one algorithm').default([...SIGNATURE_ALGORITHMS]),
      /** credentials whose integrity level (from enrollment) is lower are refused: 403 attestation_insufficient */
      minIntegrity: z.enum(INTEGRITY_LEVELS).optional(),
      /** how old `created` may be */
      maxAgeSeconds: z.int().min(1).max(300).default(DEFAULT_FRESHNESS.maxAgeSeconds),
      /** how far `expires` may be after `created` */
      maxLifetimeSeconds: z.int().min(1).max(300).default(DEFAULT_FRESHNESS.maxLifetimeSeconds),
      /** how far ahead of gatehouse's clock `created` may be; also added to each nonce's lifetime for replicas' clock differences */
      clockSkewSeconds: z.int().min(0).max(60).default(DEFAULT_FRESHNESS.maxSkewSeconds),
      /** when a store cannot answer: closed = 503 dependency_unavailable; open = let the request through, recorded as an action */
      failureMode: z.enum(['closed', 'open']).default('closed'),
      /** false: Signature, Signature-Input and Device-Credential are removed before the upstream (it gets the identity from gatehouse) */
      forwardSignatureHeaders: z.boolean().default(false),
    })
    .superRefine((config, ctx) => {
      if (config.issuerKeys.length === 0 && config.issuerKeysFile === undefined && config.credentialKeysFile === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['issuerKeys'],
          message: 'needs the credential issuer keys: credentialKeysFile (the key manifest the issuance filter signs with), issuerKeys (inline public JWKs) and/or issuerKeysFile (a JWKS file)',
        });
      }
      const kids = [
        ...config.issuerKeys.map((jwk) => jwk['kid']),
        ...(config.issuerKeysFile?.value.map((k) => k.kid) ?? []),
        ...(config.credentialKeysFile?.value.keys.map((k) => k.kid) ?? []),
      ];
      const twice = kids.find((kid, i) => kids.indexOf(kid) !== i);
      if (twice !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['issuerKeys'], message: `kid ${JSON.stringify(twice)} is defined twice (inline, in issuerKeysFile or in credentialKeysFile): a credential must name exactly one key` });
      }
    }),
);
/** relative paths read as written (the JSON Schema, tests) */
export const signedConfig = signedConfigIn(AS_WRITTEN);

export type SignedConfig = z.infer<typeof signedConfig>;

/** Every issuer key of the config, inline first (kids are unique: the schema refuses one twice). */
export function issuerKeysOf(config: SignedConfig): IssuerKey[] {
  return [
    ...config.issuerKeys.map(toIssuerKey),
    ...(config.issuerKeysFile?.value ?? []),
    ...(config.credentialKeysFile?.value.keys.map((key) => ({ kid: key.kid, publicKey: key.publicKey })) ?? []),
  ];
}
