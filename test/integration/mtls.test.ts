// Client-certificate authorization end to end: certificates made here by a test CA, presented on
// the stand-in's mTLS downstream (ext_proc attributes / ext_authz source.certificate as Envoy sends
// them) or forwarded in XFCC; what the client gets, what the upstream sees, the audit line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { watchClients } from '../../src/reload.js';
import { get } from '../harness/helpers.js';
import { createTestCa } from '../support/certificates.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';

const ca = createTestCa();
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mtls-'));
after(() => {
  ca.close();
  rmSync(dir, { recursive: true, force: true });
});

const ACME_URI = 'spiffe://partners.example.com/acme';
const acme = ca.issue({ subject: '/O=Acme/CN=acme', uri: ACME_URI });
const revoked = ca.issue({ subject: '/O=Acme/CN=acme-old', uri: ACME_URI });
const stranger = ca.issue({ subject: '/O=Nobody/CN=stranger', uri: 'spiffe://partners.example.com/stranger' });
const developer = ca.issue({ subject: '/O=Dev/CN=dev-kim' });
/** as openssl prints a fingerprint: upper case with colons (the registry accepts either form) */
const colonHex = (hex: string): string => hex.toUpperCase().match(/../g)!.join(':');

const registryText = (moreClients = ''): string => `
clients:
  - id: acme
    match: { uri: ${ACME_URI} }
    routes: [partner-pay, partner-read, mesh]
    methods: [GET, POST]
    scopes: [payments:write, accounts:read]
  - id: dev-kim
    match: { subject: "CN=dev-kim,O=Dev", fingerprints: ["${developer.facts.sha256}"] }
    routes: [partner-read]
    methods: [GET]
    scopes: [accounts:read]
${moreClients}revokedFingerprints: ["${colonHex(revoked.facts.sha256)}"]
`;
const REGISTRY = registryText();

function config(clientsFile: string): string {
  return `
mtls: { clientsFile: ${clientsFile} }
routes:
  - id: partner-pay
    match: { path: { prefix: /partner/pay/ } }
    filters: [{ mtls: { scopes: [payments:write] } }]
  - id: partner-read
    match: { path: { prefix: /partner/read/ } }
    filters: [{ mtls: { scopes: [accounts:read] } }]
  - id: mesh
    match: { path: { prefix: /mesh/ } }
    filters:
      - sanitize: { trustForwardedClientCert: true }
      - mtls: { trustForwardedClientCert: true, scopes: [accounts:read] }
`;
}

let files = 0;
function registryFile(text: string): string {
  const file = join(dir, `clients-${++files}.yaml`);
  writeFileSync(file, text);
  return file;
}

type Via = 'ext_proc' | 'ext_authz';
interface Call {
  readonly path: string;
  readonly method?: string;
  readonly cert?: string;
  readonly headers?: [string, string][];
  readonly id: string;
}

async function call(e2e: EndToEnd, via: Via, c: Call) {
  const request = { method: c.method ?? 'GET', path: c.path, authority: 'api.example.com', headers: [...(c.headers ?? []), ['x-request-id', c.id]] as [string, string][] };
  const options = c.cert === undefined ? {} : { peerCertificate: c.cert };
  const r = via === 'ext_proc' ? await e2e.envoy.request(request, options) : await e2e.authz.request(request, options);
  return { r, audit: await e2e.logLine('mtls_audit', c.id) };
}

for (const via of ['ext_proc', 'ext_authz'] as const) {
  describe(`over ${via}`, () => {
    test('refusals: no certificate 401, unknown 403, revoked 403, out of route/method/scope 403; each audited with its reason', async (t) => {
      const e2e = await endToEnd(t, config(registryFile(REGISTRY)));
      const cases = [
        { call: { path: '/partner/pay/1', id: `${via}-none` }, status: 401, reason: 'client_certificate_required', fingerprint: undefined },
        { call: { path: '/partner/pay/1', cert: stranger.pem, id: `${via}-unknown` }, status: 403, reason: 'client_unknown', fingerprint: stranger.facts.sha256 },
        { call: { path: '/partner/pay/1', cert: revoked.pem, id: `${via}-revoked` }, status: 403, reason: 'client_certificate_revoked', fingerprint: revoked.facts.sha256 },
        { call: { path: '/partner/pay/1', cert: developer.pem, id: `${via}-route` }, status: 403, reason: 'client_not_allowed', fingerprint: developer.facts.sha256 },
        { call: { path: '/partner/read/1', method: 'POST', cert: developer.pem, id: `${via}-method` }, status: 403, reason: 'client_not_allowed', fingerprint: developer.facts.sha256 },
      ];
      for (const expected of cases) {
        const { r, audit } = await call(e2e, via, expected.call);
        assert.equal(r.status, expected.status, expected.call.id);
        assert.equal(get(r.headers, 'x-gatehouse-reason'), expected.reason, expected.call.id);
        assert.equal(r.upstreamRequest, undefined);
        assert.equal(audit['decision'], 'deny');
        assert.equal(audit['reason'], expected.reason);
        assert.equal(audit['fingerprint'], expected.fingerprint);
        assert.equal(audit['route'], expected.call.path.startsWith('/partner/pay/') ? 'partner-pay' : 'partner-read');
        assert.equal(audit['method'], expected.call.method ?? 'GET');
        assert.equal((await e2e.accessLine(expected.call.id))['reason'], expected.reason);
      }
      // the revoked certificate is a security event naming the certificate (verified by the TLS layer)
      const events = e2e.logs.filter((l) => l['msg'] === 'security_event').map((l) => [l['code'], l['request_id'], l['subject'], l['device'], l['trust']]);
      assert.deepEqual(events, [['client_certificate_revoked', `${via}-revoked`, ACME_URI, revoked.facts.sha256, 'verified']], 'only the revoked certificate is suspicious');
      const known = await call(e2e, via, { path: '/partner/pay/1', cert: developer.pem, id: `${via}-known` });
      assert.equal(known.audit['client_id'], 'dev-kim', 'a known client refused for scope is named in the audit');
    });

    test('allowed via the connection certificate: the upstream gets the client id (a forged one replaced), the audit names client and fingerprint', async (t) => {
      const e2e = await endToEnd(t, config(registryFile(REGISTRY)));
      const forged: [string, string][] = [['x-gatehouse-client', 'admin'], ['x-forwarded-client-cert', `Hash=${'0'.repeat(64)};URI=spiffe://partners.example.com/other`]];
      const { r, audit } = await call(e2e, via, { path: '/partner/pay/transfer', method: 'POST', cert: acme.pem, headers: forged, id: `${via}-acme` });
      assert.equal(r.status, 200);
      assert.equal(get(r.upstreamRequest!.headers, 'x-gatehouse-client'), 'acme');
      assert.equal(get(r.upstreamRequest!.headers, 'x-forwarded-client-cert'), undefined, 'XFCC is stripped where it is not trusted');
      assert.deepEqual(
        { ...audit, time: undefined, level: undefined, pid: undefined, hostname: undefined, service: undefined, version: undefined },
        {
          ...{ time: undefined, level: undefined, pid: undefined, hostname: undefined, service: undefined, version: undefined },
          msg: 'mtls_audit', request_id: `${via}-acme`, route: 'partner-pay', method: 'POST', path: '/partner/pay/transfer',
          decision: 'allow', reason: 'client_allowed', client_id: 'acme', fingerprint: acme.facts.sha256, uri_san: ACME_URI, subject: 'CN=acme,O=Acme', source: 'connection',
        },
      );
      const metrics = await (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
      assert.match(metrics, /^gatehouse_filter_actions_total\{route="partner-pay",filter="mtls",action="client_allowed"\} 1$/m);
    });

    test('a forged XFCC on an untrusted route is ignored: the connection certificate decides', async (t) => {
      const e2e = await endToEnd(t, config(registryFile(REGISTRY)));
      const claimAcme: [string, string][] = [['x-forwarded-client-cert', `Hash=${acme.facts.sha256};Subject="CN=acme,O=Acme";URI=${ACME_URI}`]];
      const asDeveloper = await call(e2e, via, { path: '/partner/pay/1', cert: developer.pem, headers: claimAcme, id: `${via}-forged-dev` });
      assert.equal(asDeveloper.r.status, 403);
      assert.equal(asDeveloper.audit['client_id'], 'dev-kim');
      const anonymous = await call(e2e, via, { path: '/partner/pay/1', headers: claimAcme, id: `${via}-forged-none` });
      assert.equal(anonymous.r.status, 401);
    });

    test('on a trusted route the client certificate comes from XFCC (its last element); a malformed XFCC is 400', async (t) => {
      const e2e = await endToEnd(t, config(registryFile(REGISTRY)));
      const xfcc = `By=spiffe://cluster.local/ns/edge/sa/proxy;Hash=${stranger.facts.sha256};URI=spiffe://partners.example.com/stranger,By=spiffe://cluster.local/ns/istio-system/sa/gw;Hash=${acme.facts.sha256};Subject="CN=acme,O=Acme";URI=${ACME_URI}`;
      const ok = await call(e2e, via, { path: '/mesh/accounts', cert: stranger.pem, headers: [['x-forwarded-client-cert', xfcc]], id: `${via}-xfcc` });
      assert.equal(ok.r.status, 200);
      assert.equal(get(ok.r.upstreamRequest!.headers, 'x-gatehouse-client'), 'acme');
      assert.equal(get(ok.r.upstreamRequest!.headers, 'x-forwarded-client-cert'), xfcc, 'trusted: passed on');
      assert.equal(ok.audit['source'], 'xfcc');
      assert.equal(ok.audit['fingerprint'], acme.facts.sha256);
      const bad = await call(e2e, via, { path: '/mesh/accounts', headers: [['x-forwarded-client-cert', 'Hash="unterminated;URI=x']], id: `${via}-xfcc-bad` });
      assert.equal(bad.r.status, 400);
      assert.equal(get(bad.r.headers, 'x-gatehouse-reason'), 'bad_request_headers');
      assert.equal(bad.audit['reason'], 'bad_request_headers');
      const none = await call(e2e, via, { path: '/mesh/accounts', cert: acme.pem, id: `${via}-xfcc-none` });
      assert.equal(none.r.status, 401, 'on a trusted route the connection certificate is the proxy’s, never the client’s');
    });
  });
}

test('the registry reloads live: a valid file is applied to new requests; a bad one is refused, logged with file and line, counted, and the old stays', async (t) => {
  const file = registryFile(REGISTRY);
  const e2e = await endToEnd(t, config(file));
  // the test drives the checks: no polling, and an fs event's own check far off (with the 100 ms
  // default it could run first on a busy machine, and the test's check would find it 'unchanged')
  const watcher = watchClients(e2e.gatehouse, { pollMs: 0, debounceMs: 600_000 })!;
  t.after(() => { watcher.close(); });
  assert.equal((await call(e2e, 'ext_proc', { path: '/partner/read/1', cert: stranger.pem, id: 'reload-0' })).r.status, 403);

  writeFileSync(file, registryText('  - { id: stranger, match: { uri: "spiffe://partners.example.com/stranger" }, routes: [partner-read], scopes: [accounts:read] }\n'));
  assert.equal(await watcher.check(), 'reloaded');
  assert.equal((await call(e2e, 'ext_proc', { path: '/partner/read/1', cert: stranger.pem, id: 'reload-1' })).r.status, 200);

  writeFileSync(file, 'clients:\n  - id: broken\n    match: {}\n    routes: []\n');
  assert.equal(await watcher.check(), 'rejected');
  const refused = e2e.logs.find((l) => l['msg'] === 'client registry reload refused: the running registry stays');
  assert.deepEqual(refused?.['errors'], [`${file}:3: clients[0].match: must give at least one of uri, subject, fingerprints`, `${file}:4: clients[0].routes: must have at least 1 item(s)`]);
  assert.equal((await call(e2e, 'ext_proc', { path: '/partner/read/1', cert: stranger.pem, id: 'reload-2' })).r.status, 200, 'the last good registry stays');
  const metrics = await (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
  assert.match(metrics, /^gatehouse_client_registry_reloads_total\{result="success"\} 1$/m);
  assert.match(metrics, /^gatehouse_client_registry_reloads_total\{result="failure"\} 1$/m);
});
