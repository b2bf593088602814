// `mtls`: client-certificate authorization for partners and developers. Envoy (Istio) does the
// handshake and verifies the chain; this filter decides who may call what and audits every decision:
//  - the certificate comes from the connection (ext_proc attributes / ext_authz source.certificate),
//    or from x-forwarded-client-cert only on a route that says its listener's proxy sets it;
//  - revoked fingerprint → 403; with a registry that revokes any, a certificate without a readable
//    fingerprint → 403 client_fingerprint_missing (it could be a revoked one); no registered client → 403, client not allowed this route, method or
//    the route's scopes → 403, no certificate where one is required → 401;
//  - allowed: the client id goes upstream in x-gatehouse-client (sanitize strips a client-sent one)
//    and to later filters in ctx.state.
// One `mtls_audit` log line per decision, and gatehouse_filter_actions_total{filter="mtls",action=<reason>}.
import { HEADER } from '../../pipeline/headers.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { CONTINUE, type FilterDefinition, type Outcome, type PeerCertificate, type RequestContext } from '../../pipeline/types.js';
import { recordClaimant, STATE, type AuthenticatedClient } from '../../pipeline/state.js';
import type { MtlsAuditRecord, MtlsDeps, RegisteredClient } from '../../pipeline/services.js';
import { normalizeFingerprint } from './clients.js';
import { mtlsConfig, type MtlsConfig } from './config.js';
import { parseXfcc } from './xfcc.js';

/** ctx.state key under which later filters find the authenticated client */
export const MTLS_CLIENT_STATE = STATE.mtlsClient;

export type { AuthenticatedClient };

/** reasons of allowed decisions; denials use their deny code */
export const MTLS_ALLOWED = { client: 'client_allowed', anonymous: 'anonymous' } as const;

type DenyCode = 'client_certificate_required' | 'client_unknown' | 'client_certificate_revoked' | 'client_fingerprint_missing' | 'client_not_allowed' | 'bad_request_headers';

function whyNotAllowed(client: RegisteredClient, ctx: RequestContext, scopes: readonly string[]): string | undefined {
  if (!client.routes.includes(ctx.routeId)) return `client ${client.id} may not call route ${ctx.routeId}`;
  if (client.methods !== undefined && !client.methods.includes(ctx.method)) return `client ${client.id} may not use ${ctx.method}`;
  const missing = scopes.filter((s) => !client.scopes.includes(s));
  if (missing.length > 0) return `client ${client.id} lacks scope ${missing.join(', ')}`;
  return undefined;
}

export function compileMtls(config: MtlsConfig, deps: MtlsDeps): (ctx: RequestContext) => Outcome {
  const source: MtlsAuditRecord['source'] = config.trustForwardedClientCert ? 'xfcc' : 'connection';

  return (ctx) => {
    /** audit, count, and answer one decision; `client` is set once the certificate is known to belong to one */
    const decide = (cert: PeerCertificate | undefined, client: RegisteredClient | undefined, denial?: { code: DenyCode; detail?: string }): Outcome => {
      const reason = denial?.code ?? (client === undefined ? MTLS_ALLOWED.anonymous : MTLS_ALLOWED.client);
      deps.audit({
        request_id: ctx.requestId,
        route: ctx.routeId,
        method: ctx.method,
        path: ctx.pathname,
        decision: denial ? 'deny' : 'allow',
        reason,
        ...(client === undefined ? {} : { client_id: client.id }),
        ...(cert?.sha256 === undefined ? {} : { fingerprint: normalizeFingerprint(cert.sha256) ?? cert.sha256 }),
        ...(cert?.uriSans[0] === undefined ? {} : { uri_san: cert.uriSans[0] }),
        ...(cert?.subject === undefined ? {} : { subject: cert.subject }),
        source: cert === undefined ? 'none' : source,
      });
      ctx.recordAction({ filter: 'mtls', action: reason, ...(client === undefined ? {} : { items: [client.id] }) });
      if (denial) return { kind: 'deny', reason: denial.code, ...(denial.detail === undefined ? {} : { detail: denial.detail }) };
      if (client) {
        ctx.requestEdits.set(HEADER.client, client.id);
        ctx.state.set(MTLS_CLIENT_STATE, { id: client.id, scopes: client.scopes } satisfies AuthenticatedClient);
      }
      return CONTINUE;
    };

    let cert: PeerCertificate | undefined;
    if (config.trustForwardedClientCert) {
      const values = ctx.requestHeaders.getAll(HEADER.forwardedClientCert);
      if (values.length > 0) {
        const parsed = parseXfcc(values.join(','));
        if (!parsed.ok) return decide(undefined, undefined, { code: 'bad_request_headers', detail: parsed.detail });
        cert = parsed.certificate;
      }
    } else {
      cert = ctx.peer.certificate;
    }
    if (cert === undefined) return decide(undefined, undefined, config.required ? { code: 'client_certificate_required' } : undefined);
    const registry = deps.clients();
    if (registry.isRevoked(cert)) {
      // a security event (a withdrawn partner key in use): it names the certificate, which Envoy (or
      // the mesh, for a trusted XFCC) verified: its identity as the subject, its fingerprint as the device
      const identity = cert.uriSans[0] ?? cert.subject;
      const device = normalizeFingerprint(cert.sha256);
      recordClaimant(ctx, { ...(identity === undefined ? {} : { subject: identity }), ...(device === undefined ? {} : { device }), trust: 'verified' });
      return decide(cert, undefined, { code: 'client_certificate_revoked' });
    }
    // revocation is by fingerprint: without one, a revoked certificate would look like any other
    if (registry.hasRevocations && normalizeFingerprint(cert.sha256) === undefined) {
      return decide(cert, undefined, { code: 'client_fingerprint_missing', detail: cert.sha256 === undefined ? 'no SHA-256 fingerprint came with the certificate' : 'the certificate fingerprint is not 64 hex digits' });
    }
    const client = registry.find(cert);
    if (!client) return decide(cert, undefined, { code: 'client_unknown' });
    const refused = whyNotAllowed(client, ctx, config.scopes);
    return decide(cert, client, refused === undefined ? undefined : { code: 'client_not_allowed', detail: refused });
  };
}

export const mtlsFilter: FilterDefinition<typeof mtlsConfig> = {
  name: 'mtls',
  order: FILTER_ORDER.mtls,
  configSchema: mtlsConfig,
  needs: () => ({}),
  checkRoute(config, others) {
    // read by shape: a filter names no other filter's module
    const sanitize = others.get('sanitize') as { readonly trustForwardedClientCert?: boolean } | undefined;
    if (config.trustForwardedClientCert && sanitize?.trustForwardedClientCert !== true) {
      return 'trustForwardedClientCert: true needs sanitize: { trustForwardedClientCert: true } on this route too, or sanitize strips the header before mtls reads it';
    }
    return undefined;
  },
  create(config, deps) {
    if (!deps.mtls) throw new Error('the mtls filter needs a client registry: set mtls.clientsFile in the top-level config');
    return { onRequestHeaders: compileMtls(config, deps.mtls) };
  },
};
