// The mtls filter on its own: XFCC parsing, the registry file (errors with file, line and field),
// the decision table, and the config checks across filters.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../../test/support/config.js';
import { buildRouteTable } from '../../config/routes.js';
import { certificateFromAttributes } from '../../envoy/peer-certificate.js';
import { createRequestContext } from '../../pipeline/context.js';
import { HeaderMap } from '../../pipeline/headers.js';
import type { Outcome, PeerCertificate, RequestContext } from '../../pipeline/types.js';
import { FILTER_REGISTRY } from '../registry.js';
import { parseClientRegistry } from '../../config/clients-file.js';
import type { MtlsAuditRecord } from './clients.js';
import { mtlsConfig } from './config.js';
import { compileMtls, MTLS_CLIENT_STATE } from './mtls.js';
import { parseXfcc } from './xfcc.js';
import { createFilterDeps } from '../deps.js';

const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

describe('XFCC', () => {
  test('the last element counts; quoted values may hold , ; = and escaped quotes; URI repeats', () => {
    const parsed = parseXfcc(`By=spiffe://a;Hash=${HASH_B};URI=spiffe://first,By=spiffe://gw;Hash=${HASH_A.toUpperCase()};Subject="CN=x\\"y,O=A\\\\B;C";URI=spiffe://one;URI=spiffe://two;DNS=x.example.com`);
    assert.deepEqual(parsed, { ok: true, certificate: { uriSans: ['spiffe://one', 'spiffe://two'], subject: 'CN=x"y,O=A\\B;C', sha256: HASH_A } });
  });

  test('empty values are absent', () => {
    assert.deepEqual(parseXfcc(`Hash=${HASH_A};URI=;Subject=""`), { ok: true, certificate: { uriSans: [], sha256: HASH_A } });
  });

  test('malformed: refused with what is wrong, never a guess', () => {
    for (const [header, why] of [
      ['Hash', 'a pair without "="'],
      ['Hash="abc', 'an unterminated quoted value'],
      ['Subject="a"b', 'text after a quoted value'],
      ['Foo=bar', 'unknown key "foo"'],
      ['URI=a"b', 'a quote or "=" inside a bare value'],
      ['Hash=1234', 'Hash is not a SHA-256 hex digest'],
      ['', 'a pair without "="'],
    ] as const) {
      const parsed = parseXfcc(header);
      assert.ok(!parsed.ok && parsed.detail.endsWith(why), `${header}: ${JSON.stringify(parsed)}`);
    }
  });
});

const REGISTRY = `clients:
  - id: acme
    match: { uri: spiffe://p/acme }
    routes: [pay]
    methods: [post]
    scopes: [payments:write]
  - id: dev
    match: { subject: "CN=dev", fingerprints: ["${HASH_B.toUpperCase().match(/../g)!.join(':')}"] }
    routes: [pay]
revokedFingerprints: [${HASH_A}]
`;

describe('client registry file', () => {
  test('errors name file, line and field, all of them at once', () => {
    const parsed = parseClientRegistry(
      'clients:\n  - id: a\n    match: { uri: x, fingerprint: [ab] }\n    routes: [r]\n  - id: a\n    match: { fingerprints: [zz] }\n    routes: r\nrevokedFingerprints: [12]\n',
      'clients.yaml',
    );
    assert.ok(!parsed.ok);
    assert.deepEqual(parsed.errors.map((e) => e.format()), [
      'clients.yaml:3: clients[0].match.fingerprint: unknown key; allowed here: uri, subject, fingerprints',
      'clients.yaml:6: clients[1].match.fingerprints[0]: must be a SHA-256 fingerprint: 64 hex digits, colons allowed',
      'clients.yaml:7: clients[1].routes: must be a list, got the string "r"',
      'clients.yaml:8: revokedFingerprints[0]: must be a string, got number 12',
    ]);
    const duplicate = parseClientRegistry('clients:\n  - { id: a, match: { uri: x }, routes: [r] }\n  - { id: a, match: { uri: y }, routes: [r] }\n', 'c.yaml');
    assert.deepEqual(!duplicate.ok && duplicate.errors.map((e) => e.format()), ['c.yaml:3: clients[1].id: duplicate client id "a" (also clients[0])']);
    const syntax = parseClientRegistry('clients: [\n', 'c.yaml');
    assert.ok(!syntax.ok && syntax.errors[0]!.format().startsWith('c.yaml:'));
    const empty = parseClientRegistry('', 'c.yaml');
    assert.deepEqual(!empty.ok && empty.errors.map((e) => e.format()), ['c.yaml: the file is empty; expected a map with clients and revokedFingerprints']);
  });
});

function decide(peer: PeerCertificate | undefined, options: { route?: string; method?: string; headers?: [string, string][]; config?: unknown } = {}) {
  const registry = parseClientRegistry(REGISTRY, 'clients.yaml');
  assert.ok(registry.ok);
  const audits: MtlsAuditRecord[] = [];
  const ctx: RequestContext = createRequestContext(
    { method: options.method ?? 'POST', authority: 'api.example.com', scheme: 'https', path: '/pay/1?x=y' },
    new HeaderMap([[':path', '/pay/1'], ...(options.headers ?? [])]),
    peer ? { certificate: peer } : {},
    { routeId: options.route ?? 'pay', pathTemplate: '/pay/*', params: {} },
    () => new AbortController().signal,
  );
  const check = compileMtls(mtlsConfig.parse(options.config ?? { scopes: ['payments:write'] }), { clients: () => registry.registry, audit: (r) => audits.push(r) });
  const outcome: Outcome = check(ctx);
  return { outcome, ctx, audits, code: outcome.kind === 'deny' ? outcome.reason : outcome.kind };
}

describe('decisions', () => {
  const acme = { uriSans: ['spiffe://p/acme'], sha256: 'c'.repeat(64) };

  test('allowed: client id to upstream and to later filters; one audit line and one action', () => {
    const { code, ctx, audits } = decide(acme);
    assert.equal(code, 'continue');
    assert.deepEqual(ctx.requestEdits.sets, [{ name: 'x-gatehouse-client', value: 'acme', append: false }]);
    assert.deepEqual(ctx.state.get(MTLS_CLIENT_STATE), { id: 'acme', scopes: ['payments:write'] });
    assert.deepEqual(audits, [{ request_id: ctx.requestId, route: 'pay', method: 'POST', path: '/pay/1', decision: 'allow', reason: 'client_allowed', client_id: 'acme', fingerprint: acme.sha256, uri_san: 'spiffe://p/acme', source: 'connection' }]);
    assert.deepEqual(ctx.actions, [{ filter: 'mtls', action: 'client_allowed', items: ['acme'] }]);
  });

  test('each refusal has its code', () => {
    assert.equal(decide(undefined).code, 'client_certificate_required');
    assert.equal(decide({ uriSans: ['spiffe://p/acme'], sha256: HASH_A }).code, 'client_certificate_revoked', 'revoked wins over a matching client');
    assert.equal(decide({ uriSans: ['spiffe://p/other'], sha256: 'e'.repeat(64) }).code, 'client_unknown');
    assert.equal(decide(acme, { route: 'other' }).code, 'client_not_allowed');
    assert.equal(decide(acme, { method: 'GET' }).code, 'client_not_allowed');
    assert.equal(decide(acme, { config: { scopes: ['payments:write', 'admin'] } }).code, 'client_not_allowed');
    const dev = decide({ uriSans: [], subject: 'CN=dev', sha256: HASH_B });
    assert.equal(dev.code, 'client_not_allowed', 'every match field holds, but dev lacks the scope');
    assert.equal(dev.audits[0]?.client_id, 'dev');
    assert.equal(decide({ uriSans: [], subject: 'CN=dev', sha256: 'd'.repeat(64) }).code, 'client_unknown', 'subject alone is not enough when fingerprints are given');
  });

  test('fingerprints are compared normalized: a revoked certificate in upper case or with colons is still revoked', () => {
    const colons = HASH_A.toUpperCase().match(/../g)!.join(':');
    assert.equal(decide({ uriSans: ['spiffe://p/acme'], sha256: colons }).code, 'client_certificate_revoked');
    assert.equal(decide({ uriSans: ['spiffe://p/acme'], sha256: HASH_A.toUpperCase() }).code, 'client_certificate_revoked');
    const dev = decide({ uriSans: [], subject: 'CN=dev', sha256: HASH_B.toUpperCase().match(/../g)!.join(':') });
    assert.equal(dev.audits[0]?.client_id, 'dev', 'a registered fingerprint matches whatever its spelling');
    assert.equal(dev.audits[0]?.fingerprint, HASH_B, 'the audit line has the normalized form');
  });

  test('a registry with revocations refuses a certificate whose fingerprint is absent or unreadable (client_fingerprint_missing)', () => {
    const absent = decide({ uriSans: ['spiffe://p/acme'] });
    assert.equal(absent.code, 'client_fingerprint_missing');
    assert.equal(absent.audits[0]?.decision, 'deny');
    assert.equal(decide({ uriSans: ['spiffe://p/acme'], sha256: 'not-hex' }).code, 'client_fingerprint_missing');
    assert.equal(decide({ uriSans: ['spiffe://p/acme'], sha256: 'c'.repeat(63) }).code, 'client_fingerprint_missing');
  });

  test('optional: no certificate passes as anonymous, audited', () => {
    const { code, audits, ctx } = decide(undefined, { config: { required: false } });
    assert.equal(code, 'continue');
    assert.equal(audits[0]?.reason, 'anonymous');
    assert.deepEqual(ctx.requestEdits.sets, []);
  });

  test('trusted XFCC replaces the connection certificate; a malformed one is 400', () => {
    const xfcc: [string, string] = ['x-forwarded-client-cert', `Hash=${'c'.repeat(64)};URI=spiffe://p/acme`];
    const trusted = { scopes: ['payments:write'], trustForwardedClientCert: true };
    assert.equal(decide(undefined, { headers: [xfcc], config: trusted }).audits[0]?.client_id, 'acme');
    assert.equal(decide(acme, { config: trusted }).code, 'client_certificate_required', 'the connection certificate is the proxy’s');
    assert.equal(decide(undefined, { headers: [['x-forwarded-client-cert', 'Hash=zz']], config: trusted }).code, 'bad_request_headers');
    assert.equal(decide({ uriSans: ['spiffe://p/other'], sha256: 'e'.repeat(64) }, { headers: [xfcc] }).code, 'client_unknown', 'untrusted: XFCC ignored');
  });

  test('ext_proc attributes: the digest is lower-cased, absent attributes are absent', () => {
    assert.equal(certificateFromAttributes(() => undefined), undefined);
    const attrs: Record<string, string> = { 'connection.sha256_peer_certificate_digest': HASH_A.toUpperCase(), 'connection.subject_peer_certificate': 'CN=x' };
    assert.deepEqual(certificateFromAttributes((name) => attrs[name]), { uriSans: [], subject: 'CN=x', sha256: HASH_A });
  });
});

describe('config', () => {
  const build = (yaml: string, withRegistry = true) => {
    const parsed = parseConfig(yaml, 'c.yaml');
    assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.errors.map((e) => e.format())));
    const registry = parseClientRegistry(REGISTRY, 'clients.yaml');
    assert.ok(registry.ok);
    const built = buildRouteTable(parsed.config, { registry: FILTER_REGISTRY, deps: createFilterDeps(withRegistry ? { mtls: { clients: () => registry.registry, audit: () => undefined } } : {}) });
    return built.ok ? [] : built.errors.map((e) => e.format());
  };

  test('trusting XFCC in mtls needs sanitize to keep it on the same route', () => {
    assert.deepEqual(build('routes:\n  - id: a\n    match: { path: { prefix: / } }\n    filters:\n      - mtls: { trustForwardedClientCert: true }\n'), [
      'c.yaml: routes[0] (id "a"): filters[0].mtls: trustForwardedClientCert: true needs sanitize: { trustForwardedClientCert: true } on this route too, or sanitize strips the header before mtls reads it',
    ]);
    assert.deepEqual(build('routes:\n  - id: a\n    match: { path: { prefix: / } }\n    filters:\n      - mtls: { trustForwardedClientCert: true }\n      - sanitize: { trustForwardedClientCert: true }\n'), []);
  });

  test('an mtls route without a client registry is an error that says where to set it', () => {
    assert.deepEqual(build('routes:\n  - id: a\n    match: { path: { prefix: / } }\n    filters: [{ mtls: {} }]\n', false), [
      'c.yaml: routes[0] (id "a"): filters[0].mtls: could not be set up: the mtls filter needs a client registry: set mtls.clientsFile in the top-level config',
    ]);
  });
});
