import { createPublicKey, X509Certificate, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';
import { z } from 'zod';
import { AS_WRITTEN, fileReadAtLoad, schemaPerScope, type FileRead, type FilterConfigScope } from '../../pipeline/filter-config.js';
import { normalizeSha256Hex } from '../../protocol/signing/android-key-attestation.js';
import { DEFAULT_CHALLENGE_TTL_SECONDS, MAX_CHALLENGE_TTL_SECONDS, type ChallengeSecrets } from '../../protocol/signing/challenge.js';
import { INTEGRITY_LEVELS, MAX_CREDENTIAL_LIFETIME_SECONDS, SIGNATURE_ALGORITHMS } from '../../protocol/signing/profile.js';
import { readCredentialKeyring } from '../../protocol/signing/credential-keys.js';

/** JWS algorithms a login token may be signed with (the identity provider's; never `none` or HMAC). */
export const LOGIN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** The secret's bounds: HMAC-SHA-256 wants at least its output size. */
const MIN_SECRET_BYTES = 32;
const MAX_SECRET_BYTES = 128;

/**
 * Reads the challenge MAC secrets: one per line as hex, newest first (the first issues, every one
 * verifies, so a secret rotates without a cliff); blank lines and `#` comments are skipped.
 */
export function readChallengeSecrets(file: string): FileRead<ChallengeSecrets> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { ok: false, message: `cannot read challenge secrets file ${file}: ${error instanceof Error ? error.message : String(error)}` };
  }
  const secrets: Uint8Array[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(line) || line.length < MIN_SECRET_BYTES * 2 || line.length > MAX_SECRET_BYTES * 2) {
      return { ok: false, message: `challenge secrets file ${file} line ${index + 1}: must be ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes as hex (e.g. openssl rand -hex 32)` };
    }
    secrets.push(new Uint8Array(Buffer.from(line, 'hex')));
  }
  const [newest, ...older] = secrets;
  if (newest === undefined) return { ok: false, message: `challenge secrets file ${file} holds no secret: one line of hex (e.g. openssl rand -hex 32), newest first` };
  return { ok: true, value: [newest, ...older] };
}

/** Reads a JWKS of public verification keys (an identity provider's, an attestation service's); private members are refused. */
export function readPublicJwks(what: string): (file: string) => FileRead<JSONWebKeySet> {
  return (file) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      return { ok: false, message: `${what} JWKS file ${file}: ${error instanceof Error ? error.message : String(error)}` };
    }
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.length === 0) return { ok: false, message: `${what} JWKS file ${file} must be {"keys": [...]} with at least one key` };
    for (const [index, key] of keys.entries()) {
      if (typeof key !== 'object' || key === null || Array.isArray(key)) return { ok: false, message: `${what} JWKS file ${file}: keys[${index}] is not a JWK object` };
      if ('d' in key) return { ok: false, message: `${what} JWKS file ${file}: keys[${index}] is a private key (has "d"): configure the public keys only` };
      try {
        createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
      } catch (error) {
        return { ok: false, message: `${what} JWKS file ${file}: keys[${index}] is not a public key: ${error instanceof Error ? error.message : String(error)}` };
      }
    }
    return { ok: true, value: { keys: keys as JSONWebKeySet['keys'] } };
  };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Reads attestation roots: one or more PEM certificates (production: Google's hardware attestation
 * roots for Android Key Attestation, Apple's App Attestation Root CA for App Attest), each a CA
 * certificate; text outside the PEM blocks (comments) is ignored.
 */
export function readAttestationRoots(file: string): FileRead<X509Certificate[]> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { ok: false, message: `cannot read attestation roots file ${file}: ${error instanceof Error ? error.message : String(error)}` };
  }
  const roots: X509Certificate[] = [];
  for (const [index, pem] of (text.match(PEM_CERTIFICATE) ?? []).entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (error) {
      return { ok: false, message: `attestation roots file ${file}: certificate ${index + 1} does not parse: ${error instanceof Error ? error.message : String(error)}` };
    }
    if (!cert.ca) return { ok: false, message: `attestation roots file ${file}: certificate ${index + 1} (${cert.subject.replaceAll('\n', ', ')}) is not a CA certificate` };
    roots.push(cert);
  }
  if (roots.length === 0) return { ok: false, message: `attestation roots file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` };
  return { ok: true, value: roots };
}

/** A Java package name as Android allows it (applicationId): at least two dot-separated segments. */
const ANDROID_PACKAGE = /^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+$/;

/** The opt-in `android-key-attestation` verifier (docs/protocol/signing.md §3.1). */
export const androidKeyAttestationConfigIn = (scope: FilterConfigScope) =>
  z.strictObject({
    /** the trusted roots, PEM (production: Google's hardware attestation roots) */
    rootsFile: fileReadAtLoad(readAttestationRoots, scope),
    /** the apps whose device keys may enroll: package name and the SHA-256 of their signing certificates */
    apps: z
      .array(
        z.strictObject({
          packageName: z.string().regex(ANDROID_PACKAGE, 'must be an Android package name, e.g. com.example.app'),
          signingCertSha256: z
            .array(
              z.string().transform((digest, ctx) => {
                const hex = normalizeSha256Hex(digest);
                if (hex !== undefined) return hex;
                ctx.addIssue({ code: 'custom', message: 'must be a SHA-256 digest as 64 hex digits (colons allowed, as keytool prints it)' });
                return z.NEVER;
              }),
            )
            .min(1, 'must name at least one signing certificate digest'),
        }),
      )
      .min(1, 'must allow at least one app')
      .refine((apps) => new Set(apps.map((a) => a.packageName)).size === apps.length, { message: 'a package name is listed twice' }),
  });

/** An Apple Developer Team ID: 10 upper-case letters and digits. */
const APPLE_TEAM_ID = /^[A-Z0-9]{10}$/;
/** A bundle identifier: letters, digits, hyphens and periods (reverse DNS), at least two segments. */
const APPLE_BUNDLE_ID = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$/;

/** The opt-in `apple-app-attest` verifier (docs/protocol/signing.md §3.2). */
export const appleAppAttestConfigIn = (scope: FilterConfigScope) =>
  z.strictObject({
    /** the trusted roots, PEM (production: Apple App Attestation Root CA) */
    rootsFile: fileReadAtLoad(readAttestationRoots, scope),
    /** the apps whose App Attest keys may vouch for an enrollment: Team ID and bundle id (the App ID is <teamId>.<bundleId>) */
    apps: z
      .array(
        z.strictObject({
          teamId: z.string().regex(APPLE_TEAM_ID, 'must be an Apple Team ID: 10 upper-case letters and digits, e.g. A1B2C3D4E5'),
          bundleId: z.string().regex(APPLE_BUNDLE_ID, 'must be a bundle identifier, e.g. com.example.app'),
        }),
      )
      .min(1, 'must allow at least one app')
      .refine((apps) => new Set(apps.map((a) => `${a.teamId}.${a.bundleId}`)).size === apps.length, { message: 'an app (teamId and bundleId) is listed twice' }),
    /** accept keys from the development App Attest environment (builds signed for development), as integrity device; never in production */
    allowDevelopment: z.boolean().default(false),
  });
/** relative paths read as written (the JSON Schema, tests) */
export const appleAppAttestConfig = appleAppAttestConfigIn(AS_WRITTEN);

/** The URL path prefix the three endpoints live under: absolute, no trailing slash, no query. */
const BASE_PATH = /^(?:\/[A-Za-z0-9._~-]+)+$/;

/**
 * A route's `issuance` entry: gatehouse answers the dynamic-security endpoints itself
 * (docs/protocol/signing.md §11): POST <basePath>/challenge, /enroll and /credential.
 */
export const issuanceConfigIn = schemaPerScope((scope: FilterConfigScope) =>
  z.strictObject({
    /** the endpoints are <basePath>/challenge, <basePath>/enroll and <basePath>/credential; the route's match must reach them */
    basePath: z.string().regex(BASE_PATH, 'must be an absolute path without a trailing slash, e.g. /gatehouse/v1/device').default('/gatehouse/v1/device'),
    /** challenge MAC secrets, hex, one per line, newest first; every replica needs the same file */
    challengeSecretsFile: fileReadAtLoad(readChallengeSecrets, scope),
    /** how long a challenge lives */
    challengeTtlSeconds: z.int().min(1).max(MAX_CHALLENGE_TTL_SECONDS).default(DEFAULT_CHALLENGE_TTL_SECONDS),
    /** `iss` of the credentials issued: the `issuer` the signed routes accept */
    issuer: z.string().min(1, 'must not be empty'),
    /** the credential issuer's key manifest (the active key signs); name the same file in the signed routes' credentialKeysFile */
    credentialKeysFile: fileReadAtLoad(readCredentialKeyring, scope),
    /** exp − iat of a credential */
    credentialLifetimeSeconds: z.int().min(30).max(MAX_CREDENTIAL_LIFETIME_SECONDS).default(300),
    /** device keys and ephemeral request keys of these algorithms are accepted */
    allowedAlgorithms: z.array(z.enum(SIGNATURE_ALGORITHMS)).min(1, 'must allow at least one algorithm').default([...SIGNATURE_ALGORITHMS]),
    /** enrollments whose verdict is weaker are refused: 403 attestation_insufficient */
    minIntegrity: z.enum(INTEGRITY_LEVELS).default('device'),
    /** who the enrolling account is: the app's login token (a JWT from the identity provider) */
    login: z.strictObject({
      /** the identity provider's `iss` */
      issuer: z.string().min(1, 'must not be empty'),
      /** the `aud` the identity provider puts in this app's tokens */
      audience: z.string().min(1, 'must not be empty'),
      /** the identity provider's public keys (JWKS), read at load and on every reload */
      jwksFile: fileReadAtLoad(readPublicJwks('login'), scope),
      /** the algorithms the identity provider signs with */
      algorithms: z.array(z.enum(LOGIN_ALGORITHMS)).min(1, 'must allow at least one algorithm'),
      /** allowed clock difference for exp / nbf / iat */
      clockToleranceSeconds: z.int().min(0).max(300).default(30),
      /**
       * an enrollment proof without `ath` (apps built before signing profile v1.1): `refuse` (400
       * enrollment_unbound) or, only while old app versions still enroll, `accept` (counted as the
       * action device_enrolled_unbound). A proof with `ath` is checked either way (docs/protocol/signing.md §3).
       */
      unboundProofs: z.enum(['refuse', 'accept']).default('refuse'),
    }),
    /** the attestation service whose verdicts (format gh-jws-verdict) enrollments carry */
    attestation: z.strictObject({
      issuer: z.string().min(1, 'must not be empty'),
      /** the app id: verdicts carry it as `aud`, and the device record keeps it */
      audience: z.string().min(1, 'must not be empty'),
      jwksFile: fileReadAtLoad(readPublicJwks('attestation'), scope),
      /** verdicts older than this (iat) are refused */
      maxAgeSeconds: z.int().min(1).max(300).default(300),
    }),
    /** optional: also accept enrollments with format android-key-attestation (the device key's attestation chain) */
    androidKeyAttestation: androidKeyAttestationConfigIn(scope).optional(),
    /** optional: also accept enrollments with format apple-app-attest (an App Attest attestation object vouching for the device key) */
    appleAppAttest: appleAppAttestConfigIn(scope).optional(),
    /** larger request bodies → 413 body_too_large (enrollment evidence is a few KiB) */
    maxRequestBytes: z.int().min(1024).max(1024 * 1024).default(64 * 1024),
    /**
     * a store cannot answer: only `closed` (503 dependency_unavailable). Failing open has nothing to
     * let through: a challenge that could not be burnt is not single use, a device that could not be
     * stored or read cannot enroll or get a credential.
     */
    failureMode: z
      .string()
      .refine((mode) => mode === 'closed', {
        message: 'must be "closed": a challenge that cannot be burnt, or a device that cannot be stored or read, leaves nothing to let through',
      })
      .default('closed'),
  }),
);
/** relative paths read as written (the JSON Schema, tests) */
export const issuanceConfig = issuanceConfigIn(AS_WRITTEN);

export type IssuanceConfig = z.infer<typeof issuanceConfig>;
