// The client certificate's facts (URI SANs, subject, SHA-256) in one shape for both adapters:
// ext_proc gets them as request attributes (envoy-behaviours 8.6), ext_authz as the URL-encoded PEM
// of `source.certificate` (11.4, include_peer_certificate).
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from '../pipeline/types.js';

/** ext_proc request attributes gatehouse reads; deploy/istio/envoyfilter-ext-proc.yaml requests them */
export const PEER_CERTIFICATE_ATTRIBUTES = {
  uriSan: 'connection.uri_san_peer_certificate',
  subject: 'connection.subject_peer_certificate',
  sha256: 'connection.sha256_peer_certificate_digest',
} as const;

export function certificateFromAttributes(read: (name: string) => string | undefined): PeerCertificate | undefined {
  const uriSan = read(PEER_CERTIFICATE_ATTRIBUTES.uriSan);
  const subject = read(PEER_CERTIFICATE_ATTRIBUTES.subject);
  const sha256 = read(PEER_CERTIFICATE_ATTRIBUTES.sha256)?.toLowerCase();
  if (uriSan === undefined && subject === undefined && sha256 === undefined) return undefined;
  return { uriSans: uriSan === undefined ? [] : [uriSan], ...(subject === undefined ? {} : { subject }), ...(sha256 === undefined ? {} : { sha256 }) };
}

// Node prints SANs as `URI:a, DNS:b`, JSON-quoting a value that holds a comma or quote.
const URI_SAN = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;

function uriSansOf(cert: X509Certificate): string[] {
  const out: string[] = [];
  for (const m of (cert.subjectAltName ?? '').matchAll(URI_SAN)) {
    const text = m[1]!;
    out.push(text.startsWith('"') ? (JSON.parse(text) as string) : text);
  }
  return out;
}

/**
 * Node prints the subject one RDN a line, in certificate order, values RFC 2253-escaped; Envoy
 * prints RFC 2253 (XN_FLAG_RFC2253): the same RDNs, last first, joined with commas.
 */
function rfc2253Subject(cert: X509Certificate): string {
  return cert.subject.split('\n').filter((rdn) => rdn.length > 0).reverse().join(',');
}

// Partners are few and reconnect with the same certificate: parse each PEM once.
const MAX_CACHED = 256;
const parsed = new Map<string, PeerCertificate | null>();

/** From ext_authz `source.certificate`; undefined when absent or not a certificate. */
export function certificateFromPem(urlEncodedPem: string | undefined): PeerCertificate | undefined {
  if (urlEncodedPem === undefined || urlEncodedPem === '') return undefined;
  const hit = parsed.get(urlEncodedPem);
  if (hit !== undefined) return hit ?? undefined;
  let facts: PeerCertificate | null;
  try {
    const cert = new X509Certificate(decodeURIComponent(urlEncodedPem));
    const subject = rfc2253Subject(cert);
    facts = { uriSans: uriSansOf(cert), ...(subject === '' ? {} : { subject }), sha256: cert.fingerprint256.replaceAll(':', '').toLowerCase() };
  } catch {
    facts = null;
  }
  if (parsed.size >= MAX_CACHED) parsed.delete(parsed.keys().next().value!);
  parsed.set(urlEncodedPem, facts);
  return facts ?? undefined;
}
