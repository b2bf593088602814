// Certificate-chain checks shared by the attestation verifiers whose evidence is an X.509 chain
// (android-key-attestation, apple-app-attest). Pure: the caller reads the trusted roots. Each check
// returns a detail for the verifier to prefix with its format, or undefined when it passes.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { jwkThumbprint } from './keys.js';
import { normalizePublicJwk } from './profile.js';

export function validAt(cert: X509Certificate, now: number): boolean {
  const ms = now * 1000;
  return Date.parse(cert.validFrom) <= ms && ms <= Date.parse(cert.validTo);
}

/** `child` is named, and signed, by `issuer`'s key, and `issuer` may issue certificates. */
function linkError(child: X509Certificate, issuer: X509Certificate): string | undefined {
  if (!issuer.ca) return 'its issuer is not a CA (basicConstraints cA is not true)';
  if (!child.checkIssued(issuer)) return 'its issuer name (or authority key id) does not match the next certificate';
  let signed: boolean;
  try {
    signed = child.verify(issuer.publicKey);
  } catch {
    signed = false;
  }
  return signed ? undefined : "its signature does not verify with the next certificate's key";
}

/** Each link verifies, each certificate is valid at `now` (Unix seconds), and the top is a configured root or issued by one. */
export function chainError(chain: readonly X509Certificate[], roots: readonly X509Certificate[], now: number): string | undefined {
  for (const [index, cert] of chain.entries()) {
    if (!validAt(cert, now)) return `chain[${index}] (${cert.subject.replaceAll('\n', ', ')}) is not valid at ${now}: ${cert.validFrom} – ${cert.validTo}`;
    const issuer = chain[index + 1];
    if (issuer === undefined) break;
    const error = linkError(cert, issuer);
    if (error !== undefined) return `chain[${index}]: ${error}`;
  }
  const top = chain[chain.length - 1];
  if (top === undefined) return 'chain is empty';
  if (roots.some((root) => root.raw.equals(top.raw))) return undefined;
  for (const root of roots) {
    if (validAt(root, now) && linkError(top, root) === undefined) return undefined;
  }
  return 'chain does not end at, or under, a configured root';
}

/** The RFC 7638 thumbprint of a P-256 or Ed25519 certificate key; undefined for any other key. */
export function thumbprintOf(key: KeyObject): string | undefined {
  try {
    const jwk = normalizePublicJwk(key.export({ format: 'jwk' }));
    return jwk === undefined ? undefined : jwkThumbprint(jwk);
  } catch {
    return undefined;
  }
}

/**
 * The DER value of extension `oid`, which `cert` must carry exactly once: the bytes, or a detail
 * naming the certificate (`certName`, e.g. "leaf") and the extension (`extensionName`).
 */
export function singleExtensionValue(cert: X509Certificate, oid: string, certName: string, extensionName: string): { ok: true; value: ArrayBuffer } | { ok: false; detail: string } {
  let value: ArrayBuffer | undefined;
  try {
    const extensions = AsnConvert.parse(cert.raw, Certificate).tbsCertificate.extensions;
    const found = extensions === undefined ? [] : extensions.filter((e) => e.extnID === oid);
    if (found.length > 1) return { ok: false, detail: `${certName} carries the ${extensionName} extension more than once` };
    value = found[0]?.extnValue.buffer;
  } catch (error) {
    return { ok: false, detail: `${certName} extensions do not parse: ${error instanceof Error ? error.message : 'unparsable'}` };
  }
  if (value === undefined) return { ok: false, detail: `${certName} has no ${extensionName} extension (${oid})` };
  return { ok: true, value };
}
