// Dynamic-security verifier cost beside the node:crypto primitives it cannot avoid. Bounded loops
// (~2.4 s per measurement), one core, nothing printed.
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { createWorld, type World } from '../../src/protocol/signing/test-support.js';
import type { SignedRequest } from '../../src/protocol/signing/verifier.js';
import { opsPerSecPair } from './measure.js';
import type { ProtocolBenchRow } from './types.js';


function primitive(algorithm: 'ecdsa-p256-sha256' | 'ed25519', body: Uint8Array): () => boolean {
  const message = new Uint8Array(64).fill(1);
  if (algorithm === 'ed25519') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signature = sign(null, message, privateKey);
    return () => createHash('sha256').update(body).digest().length === 32 && verify(null, message, publicKey, signature);
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signature = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return () => createHash('sha256').update(body).digest().length === 32 && verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
}

async function row(world: World, algorithm: 'ecdsa-p256-sha256' | 'ed25519', body: Uint8Array): Promise<ProtocolBenchRow> {
  const request: SignedRequest = await world.sign({ method: 'POST', authority: 'api.example.com', path: '/v1/transfers', query: 'dry_run=1', body });
  const first = world.verify(request);
  if (!first.ok) throw new Error(`bench request does not verify: ${first.code}`);
  const [operation, raw] = await opsPerSecPair(() => world.verify(request), primitive(algorithm, body));
  return {
    operation: `verify signed request, ${algorithm}, ${body.length}-byte body (credential cached)`,
    opsPerSec: Math.round(operation),
    primitive: { description: `${algorithm} verify of a 64-byte message + SHA-256 of the ${body.length}-byte body`, opsPerSec: Math.round(raw) },
    overheadRatio: Number((raw / operation).toFixed(3)),
  };
}

export default async function signingBench(): Promise<ProtocolBenchRow[]> {
  const body = new Uint8Array(256).fill(0x61);
  const p256 = await createWorld({ requestAlgorithm: 'ecdsa-p256-sha256' });
  const ed25519 = await createWorld({ requestAlgorithm: 'ed25519' });
  return [await row(p256, 'ecdsa-p256-sha256', body), await row(ed25519, 'ed25519', body)];
}
