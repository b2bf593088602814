// RFC 9530 Content-Digest: a structured-field dictionary of digests of the message content.
import { hash, timingSafeEqual } from 'node:crypto';
import { parseDictionary, serializeDictionary, sf } from '../common/sfv.js';
import { fail, type SigningFailure } from './codes.js';

/** Algorithms gatehouse computes and checks, with their output length in bytes (RFC 9530 §5 registry). */
export const DIGEST_ALGORITHMS = { 'sha-256': { hash: 'sha256', length: 32 }, 'sha-512': { hash: 'sha512', length: 64 } } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

function digestOf(algorithm: DigestAlgorithm, body: Uint8Array): Uint8Array {
  return hash(DIGEST_ALGORITHMS[algorithm].hash, body, 'buffer');
}

/** The Content-Digest field value for `body`, e.g. `sha-256=:X48E…=:`. */
export function computeContentDigest(body: Uint8Array, algorithms: readonly DigestAlgorithm[] = ['sha-256']): string {
  return serializeDictionary(new Map(algorithms.map((a) => [a, sf.item(sf.bytes(digestOf(a, body)))])));
}

/**
 * Checks every known digest present against the body (unknown algorithms are ignored, as RFC 9530
 * allows); at least one known digest is required.
 */
export function checkContentDigest(fieldValue: string, body: Uint8Array): { ok: true } | SigningFailure {
  const dict = parseDictionary(fieldValue);
  if (dict === undefined) return fail('digest_malformed', 'Content-Digest is not a structured-field dictionary');
  let checked = 0;
  for (const algorithm of Object.keys(DIGEST_ALGORITHMS) as DigestAlgorithm[]) {
    const member = dict.get(algorithm);
    if (member === undefined) continue;
    if (member.kind !== 'item' || member.value.type !== 'bytes' || member.value.value.length !== DIGEST_ALGORITHMS[algorithm].length) {
      return fail('digest_malformed', `${algorithm} is not a byte sequence of the right length`);
    }
    if (!timingSafeEqual(member.value.value, digestOf(algorithm, body))) return fail('digest_mismatch', `${algorithm} does not match the body`);
    checked++;
  }
  return checked > 0 ? { ok: true } : fail('digest_malformed', 'Content-Digest has no sha-256 or sha-512 member');
}
