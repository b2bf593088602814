// The client registry: a YAML file (top-level `mtls.clientsFile`) mapping client certificates to
// partners and developers, with what each may call. Validated like the main config (errors name
// file, line and field), hot-reloaded by src/reload.ts (a bad file never replaces a good one).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { configError, type ConfigError } from '../../config/errors.js';
import { issuesToErrors, type RawIssue } from '../../config/issues.js';
import { contentHash, readYaml, schemaKeys } from '../../config/load.js';
import type { PeerCertificate } from '../../pipeline/types.js';

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
export class ClientRegistry {
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

export type RegistryResult = { readonly ok: true; readonly registry: ClientRegistry; readonly hash: string } | { readonly ok: false; readonly errors: readonly ConfigError[] };

export function parseClientRegistry(text: string, fileName: string): RegistryResult {
  const expected = 'a map with clients and revokedFingerprints';
  const yaml = readYaml(text, fileName, expected);
  if (!yaml.ok) return yaml;
  if (typeof yaml.raw !== 'object' || Array.isArray(yaml.raw)) return { ok: false, errors: [configError({ file: fileName, line: 1, field: '', message: `the top level must be ${expected}` })] };
  const parsed = clientsFileSchema.safeParse(yaml.raw);
  const issues: RawIssue[] = parsed.success ? [] : parsed.error.issues.map((zod) => ({ path: zod.path, message: zod.message, zod }));
  if (parsed.success) {
    const first = new Map<string, number>();
    parsed.data.clients.forEach((c, i) => {
      const earlier = first.get(c.id);
      if (earlier === undefined) first.set(c.id, i);
      else issues.push({ path: ['clients', i, 'id'], message: `duplicate client id ${JSON.stringify(c.id)} (also clients[${earlier}])` });
    });
  }
  if (!parsed.success || issues.length > 0) {
    return { ok: false, errors: issuesToErrors(fileName, yaml.raw, issues, yaml.locate, (path) => schemaKeys(clientsFileSchema, path)) };
  }
  return { ok: true, registry: new ClientRegistry(parsed.data), hash: contentHash(text) };
}

export function loadClientRegistry(file: string): RegistryResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [configError({ file, field: '', message: `cannot read the client registry: ${err instanceof Error ? err.message : String(err)}` })] };
  }
  return parseClientRegistry(text, file);
}

/** What the mtls filter needs from the composition root: the live registry and the audit sink. */
export interface MtlsDeps {
  /** the registry new requests use; swapped on reload */
  readonly clients: () => ClientRegistry;
  /** one line per decision (docs/operations.md "mtls audit") */
  readonly audit: (record: MtlsAuditRecord) => void;
}

export interface MtlsAuditRecord {
  readonly request_id: string;
  readonly route: string;
  readonly method: string;
  readonly path: string;
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  readonly client_id?: string;
  readonly fingerprint?: string;
  readonly uri_san?: string;
  readonly subject?: string;
  /** where the certificate came from */
  readonly source: 'connection' | 'xfcc' | 'none';
}
