// The client registry: a YAML file (top-level `mtls.clientsFile`) mapping client certificates to
// partners and developers, with what each may call. Validated like the main config (errors name
// file, line and field), hot-reloaded by src/reload.ts (a bad file never replaces a good one).
import { z } from 'zod';
import type { ClientDirectory, MtlsAuditRecord, MtlsDeps } from '../../pipeline/services.js';
import type { PeerCertificate } from '../../pipeline/types.js';

export type { MtlsAuditRecord, MtlsDeps };

/**
 * `AB:CD:…` (as openssl prints it) or plain hex, any case → lower-case hex; undefined when it is not a
 * SHA-256 fingerprint. Every fingerprint is compared in this form, the registry's and the peer's alike
 * (Envoy, XFCC and a proxy in between do not all spell it the same way).
 */
export function normalizeFingerprint(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const hex = value.replaceAll(':', '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

const fingerprint = z
  .string()
  .transform((s) => normalizeFingerprint(s) ?? s)
  .refine((s) => /^[0-9a-f]{64}$/.test(s), 'must be a SHA-256 fingerprint: 64 hex digits, colons allowed');

const token = z.string().regex(/^[\x21-\x7e]{1,128}$/, 'must be 1-128 visible ASCII characters');

const client = z
  .strictObject({
    /** in the audit line, the `x-gatehouse-client` header and ctx.state */
    id: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -'),
    /** every field given must hold (AND): a URI SAN equal to `uri`, the subject equal to `subject`, the fingerprint one of `fingerprints` */
    match: z
      .strictObject({
        uri: z.string().min(1).optional(),
        subject: z.string().min(1).optional(),
        fingerprints: z.array(fingerprint).min(1).optional(),
      })
      .refine((m) => m.uri !== undefined || m.subject !== undefined || m.fingerprints !== undefined, 'must give at least one of uri, subject, fingerprints'),
    /** route ids this client may call */
    routes: z.array(z.string().min(1)).min(1),
    /** methods it may use on them; absent: any */
    methods: z.array(z.string().regex(/^[A-Za-z]+$/, 'must be an HTTP method').transform((m) => m.toUpperCase())).optional(),
    scopes: z.array(token).default([]),
  });

export const clientsFileSchema = z.strictObject({
  clients: z.array(client).default([]),
  /** refused whoever they match: certificates withdrawn before they expire */
  revokedFingerprints: z.array(fingerprint).default([]),
});

export type ClientEntry = z.infer<typeof client>;

/** An immutable registry; a reload builds a new one. */
export class ClientRegistry implements ClientDirectory {
  private readonly revoked: ReadonlySet<string>;
  private readonly clients: readonly ClientEntry[];

  constructor(file: z.infer<typeof clientsFileSchema>) {
    this.revoked = new Set(file.revokedFingerprints);
    this.clients = file.clients;
  }

  get size(): number {
    return this.clients.length;
  }

  /** a registry that revokes certificates can only clear one whose fingerprint it can read */
  get hasRevocations(): boolean {
    return this.revoked.size > 0;
  }

  isRevoked(cert: PeerCertificate): boolean {
    const sha256 = normalizeFingerprint(cert.sha256);
    return sha256 !== undefined && this.revoked.has(sha256);
  }

  /** the first client, in file order, whose every match field holds */
  find(cert: PeerCertificate): ClientEntry | undefined {
    const sha256 = normalizeFingerprint(cert.sha256);
    return this.clients.find(({ match }) => {
      if (match.uri !== undefined && !cert.uriSans.includes(match.uri)) return false;
      if (match.subject !== undefined && cert.subject !== match.subject) return false;
      if (match.fingerprints !== undefined && (sha256 === undefined || !match.fingerprints.includes(sha256))) return false;
      return true;
    });
  }
}
