// The downstream client certificate as Envoy's TLS connection info exposes it (Ssl::ConnectionInfo):
// the first URI and DNS SANs, the subject printed RFC 2253 (X509_NAME_print_ex with
// XN_FLAG_RFC2253: RDNs last first, comma-separated; multi-valued RDNs are not modelled), the
// SHA-256 digest of the DER in lower-case hex, and the URL-encoded PEM ext_authz sends.
import { X509Certificate } from 'node:crypto';

export interface PeerCertificateFacts {
  readonly uriSan?: string;
  readonly dnsSan?: string;
  readonly subject: string;
  readonly sha256: string;
  /** urlEncodedPemEncodedPeerCertificate(): the PEM with these characters percent-encoded */
  readonly urlEncodedPem: string;
}

function firstSan(cert: X509Certificate, kind: 'URI' | 'DNS'): string | undefined {
  for (const part of (cert.subjectAltName ?? '').split(', ')) if (part.startsWith(`${kind}:`)) return part.slice(kind.length + 1);
  return undefined;
}

export function peerCertificateFacts(pem: string): PeerCertificateFacts {
  const cert = new X509Certificate(pem);
  const uriSan = firstSan(cert, 'URI');
  const dnsSan = firstSan(cert, 'DNS');
  const urlEncodedPem = cert.toString().replace(/[\n /+=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return {
    ...(uriSan === undefined ? {} : { uriSan }),
    ...(dnsSan === undefined ? {} : { dnsSan }),
    subject: cert.subject.split('\n').reverse().join(','),
    sha256: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    urlEncodedPem,
  };
}
