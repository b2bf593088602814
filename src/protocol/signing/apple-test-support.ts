// App Attest attestation objects for tests: a test root CA → intermediate → credential certificate
// whose key is the App Attest key, carrying the nonce extension encoded with the same ASN.1 schema the
// verifier parses with, CBOR-encoded with the same library. Not imported by production code.
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Extension } from '@peculiar/asn1-x509';
import { encode } from 'cbor2';
import { buildCertificate, type CertSpec, type TestAttestationCa } from './android-test-support.js';
import { AAGUID_PRODUCTION, APPLE_APPATTEST_FMT, APPLE_NONCE_OID, AppleAttestationNonce, appleClientDataHash, appleRpIdHash, type AppleApp } from './apple-app-attest.js';

export const APPLE_APP: AppleApp = { teamId: 'A1B2C3D4E5', bundleId: 'com.example.superapp' };

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

/** The nonce extension (OID 1.2.840.113635.100.8.2): SEQUENCE { [1] EXPLICIT OCTET STRING }. */
export function nonceExtension(nonce: Uint8Array): Extension {
  return new Extension({ extnID: APPLE_NONCE_OID, critical: false, extnValue: new OctetString(AsnConvert.serialize(new AppleAttestationNonce({ nonce: new OctetString(nonce) }))) });
}

export interface AttestationObjectSpec {
  readonly challenge: string;
  readonly deviceKeyThumbprint: string;
  /** The App Attest key (its public half is the credential certificate's key); a fresh P-256 key by default. */
  readonly appAttestKey?: KeyObject;
  readonly app?: AppleApp;
  readonly aaguid?: Uint8Array;
  readonly counter?: number;
  readonly flags?: number;
  /** Default: SHA-256 of the App Attest key's uncompressed point, as Apple's. */
  readonly credentialId?: Uint8Array;
  /** Default: SHA-256(authData ‖ clientDataHash(challenge, thumbprint)). */
  readonly nonce?: Uint8Array;
  /** Default: [credCert, intermediate]. */
  readonly x5c?: (chain: Uint8Array[]) => unknown;
  /** Overrides of the attestation object's members (undefined deletes one). */
  readonly object?: Record<string, unknown>;
  readonly receipt?: unknown;
}

/** authenticatorData as attestKey makes it: rpIdHash flags counter aaguid L credentialId COSE key. */
export function authenticatorData(app: AppleApp, key: KeyObject, spec: Partial<AttestationObjectSpec> = {}): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  const credentialId = Buffer.from(spec.credentialId ?? sha256(Buffer.from([4]), x, y));
  const head = Buffer.alloc(37 + 16 + 2);
  Buffer.from(appleRpIdHash(app)).copy(head, 0);
  head[32] = spec.flags ?? 0x40;
  head.writeUInt32BE(spec.counter ?? 0, 33);
  Buffer.from(spec.aaguid ?? AAGUID_PRODUCTION).copy(head, 37);
  head.writeUInt16BE(credentialId.length, 53);
  // COSE_Key: kty EC2, alg ES256, crv P-256, x, y
  const cose = encode(new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, new Uint8Array(x)], [-3, new Uint8Array(y)]]));
  return Buffer.concat([head, credentialId, cose]);
}

/** The attestation object attestKey would return for `spec`, under `ca`'s intermediate (CBOR bytes). */
export function attestationObject(ca: TestAttestationCa, spec: AttestationObjectSpec, credCert: Partial<CertSpec> = {}): Uint8Array {
  const key = spec.appAttestKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const authData = authenticatorData(spec.app ?? APPLE_APP, key, spec);
  const nonce = spec.nonce ?? sha256(authData, appleClientDataHash(spec.challenge, spec.deviceKeyThumbprint));
  const credCertDer = buildCertificate({
    subject: 'App Attest Credential',
    issuer: `${ca.root.subject.replace(/^CN=/, '')} Intermediate`,
    publicKey: key,
    signingKey: ca.intermediateKey,
    ca: false,
    serial: 3,
    extensions: [nonceExtension(nonce)],
    ...credCert,
  });
  const chain = [credCertDer, ca.intermediateDer];
  const members: Record<string, unknown> = {
    fmt: APPLE_APPATTEST_FMT,
    attStmt: new Map<string, unknown>([['x5c', spec.x5c?.(chain) ?? chain], ['receipt', spec.receipt ?? new Uint8Array(64).fill(0x5a)]]),
    // a plain Uint8Array: cbor2 encodes a Buffer as its toJSON object, not as a byte string
    authData: new Uint8Array(authData),
    ...spec.object,
  };
  return encode(new Map(Object.entries(members).filter(([, value]) => value !== undefined)));
}
