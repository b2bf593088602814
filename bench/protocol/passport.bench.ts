// Passport cost beside the node:crypto primitive it cannot avoid: issuing is one sign, verifying
// one verify. The library path is the synchronous node:crypto JWS (src/protocol/passport/jws.ts);
// jose's async API is measured too, for the record of why that path exists. Bounded loops
// (~2.4 s per pair, alternating slices so both sides see the same machine load), one core, nothing
// printed.
import { sign, verify, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import {
  compilePassportPolicy, generateDevKeyring, jwksDocument, PASSPORT_TYP, verifyPassportWithKeys, type PassportAlgorithm, type PassportKeyring,
} from '../../src/protocol/passport/index.js';
import { fixedIssuer, SAMPLE_ISSUER, SAMPLE_SUBJECT, verificationKeys } from '../../src/protocol/passport/testing.js';
import { createPassportVerifier } from '../../sdk/upstream/index.js';
import { opsPerSecPair, type SyncOp } from './measure.js';
import type { ProtocolBenchRow } from './types.js';

const PRIMITIVE_NAME: Readonly<Record<PassportAlgorithm, string>> = { ES256: 'ES256 (P-256, SHA-256)', EdDSA: 'Ed25519' };

/** The raw primitive over an input of the passport's own signing-input length. */
function primitives(alg: PassportAlgorithm, privateKey: KeyObject, publicKey: KeyObject, inputLength: number): { sign: SyncOp; verify: SyncOp } {
  const input = Buffer.alloc(inputLength, 0x41);
  if (alg === 'ES256') {
    const signature = sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return {
      sign: () => sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
      verify: () => verify('sha256', input, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature),
    };
  }
  const signature = sign(null, input, privateKey);
  return { sign: () => sign(null, input, privateKey), verify: () => verify(null, input, publicKey, signature) };
}

function row(operation: string, opsPerSec: number, primitive: string, primitiveOpsPerSec: number, informational?: string): ProtocolBenchRow {
  return {
    operation,
    opsPerSec: Math.round(opsPerSec),
    primitive: { description: primitive, opsPerSec: Math.round(primitiveOpsPerSec) },
    overheadRatio: Number((primitiveOpsPerSec / opsPerSec).toFixed(3)),
    ...(informational === undefined ? {} : { informational }),
  };
}

const JOSE_COMPARISON = "jose's own cost, shown for why the core signs and verifies synchronously on node:crypto";

async function rowsFor(ring: PassportKeyring): Promise<ProtocolBenchRow[]> {
  const { alg, privateKey, publicKey } = ring.active;
  const now = Math.floor(Date.now() / 1000);
  const issuer = fixedIssuer(ring, now);
  const token = issuer.issuePassport(SAMPLE_SUBJECT);
  const signingInputLength = token.lastIndexOf('.');
  const raw = primitives(alg, privateKey, publicKey, signingInputLength);
  const signName = `one ${PRIMITIVE_NAME[alg]} sign of ${signingInputLength} bytes`;
  const verifyName = `one ${PRIMITIVE_NAME[alg]} verify of ${signingInputLength} bytes`;

  const keys = verificationKeys(ring);
  const policy = compilePassportPolicy({ audience: 'payments', issuer: SAMPLE_ISSUER });
  const sdk = createPassportVerifier({ audience: 'payments', issuer: SAMPLE_ISSUER, fetchJwks: () => Promise.resolve(structuredClone(jwksDocument(ring))) });
  const warm = await sdk.verifyPassport(token);
  const core = verifyPassportWithKeys(token, keys, policy, Date.now() / 1000);
  if (!warm.ok || !core.ok) throw new Error('the bench passport does not verify');
  const joseKeys = createLocalJWKSet(structuredClone(jwksDocument(ring)) as Parameters<typeof createLocalJWKSet>[0]);
  const joseClaims = { iss: SAMPLE_ISSUER, ...SAMPLE_SUBJECT };

  const rows: ProtocolBenchRow[] = [];
  const [issue, rawSign] = await opsPerSecPair(() => issuer.issuePassport(SAMPLE_SUBJECT), raw.sign, false);
  rows.push(row(`sign one passport, ${alg} (issuePassport)`, issue, signName, rawSign));
  const [check, rawVerify] = await opsPerSecPair(() => verifyPassportWithKeys(token, keys, policy, Date.now() / 1000), raw.verify, false);
  rows.push(row(`verify one passport, ${alg} (core, sync)`, check, verifyName, rawVerify));
  const [sdkCheck, rawVerify2] = await opsPerSecPair(() => sdk.verifyPassport(token), raw.verify, true);
  rows.push(row(`verify one passport, ${alg} (SDK verifyPassport, JWKS cached, awaited)`, sdkCheck, verifyName, rawVerify2));
  const [joseSign, rawSign2] = await opsPerSecPair(
    () => new SignJWT(joseClaims).setProtectedHeader({ alg, typ: PASSPORT_TYP, kid: ring.active.kid }).setIssuedAt().setExpirationTime('30s').sign(privateKey),
    raw.sign, true);
  rows.push(row(`for comparison: jose SignJWT, ${alg}, awaited`, joseSign, signName, rawSign2, JOSE_COMPARISON));
  const [joseVerify, rawVerify3] = await opsPerSecPair(
    () => jwtVerify(token, joseKeys, { typ: PASSPORT_TYP, algorithms: [alg], audience: 'payments', issuer: SAMPLE_ISSUER }),
    raw.verify, true);
  rows.push(row(`for comparison: jose jwtVerify, ${alg}, awaited`, joseVerify, verifyName, rawVerify3, JOSE_COMPARISON));
  return rows;
}

export default async function passportBench(): Promise<ProtocolBenchRow[]> {
  return [...(await rowsFor(generateDevKeyring('ES256'))), ...(await rowsFor(generateDevKeyring('EdDSA')))];
}
