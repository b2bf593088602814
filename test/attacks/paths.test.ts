// Attack corpus, path variants (issue 21, class 1): every spelling of a protected route's path that an
// upstream framework (Spring, Express, Tomcat) may route to the protected handler is decided on the
// protected route (here: refused 401 signature_missing, unsigned) or refused 400 path_variant /
// bad_request_headers — never given to a weaker route or passed unmatched. Over ext_proc and
// ext_authz, with `unmatched: deny` and a weak `api` prefix, and with `unmatched: pass` and none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';
import { signedFilterConfig } from '../support/signed-config.js';
import { get } from '../harness/helpers.js';

async function routes(unmatched: 'deny' | 'pass'): Promise<string> {
  const signed = await signedFilterConfig(await createWorld());
  return `
unmatched: ${unmatched}
routes:
  - id: transfers-signed
    match: { path: { exact: /api/v1/transfers }, methods: [POST] }
    filters: [{ signed: ${signed} }]
  - id: transfers-e2ee
    match: { path: { exact: /api/v1/e2ee/transfers }, methods: [POST] }
    filters: [{ signed: ${signed} }]
  - id: accounts
    match: { path: { template: "/api/v1/accounts/:accountId" } }
    filters: [{ signed: ${signed} }]
${unmatched === 'deny' ? '  - { id: api, match: { path: { prefix: /api/ } }, filters: [{ headers: { request: { set: { x-gateway: gatehouse } } } }] }' : ''}
`;
}

/** [path, the protected route it is a variant of, 'decided' or the refusal code] */
const CORPUS: readonly (readonly [string, string, 'decided' | 'path_variant' | 'bad_request_headers'])[] = [
  ['/api/v1/transfers', 'transfers-signed', 'decided'],
  ['/api/v1/transfers/', 'transfers-signed', 'decided'],
  ['/api/v1/transfers;jsessionid=x', 'transfers-signed', 'decided'],
  ['/api/v1/transfers/.', 'transfers-signed', 'decided'],
  ['/api/v1/transfers///', 'transfers-signed', 'decided'],
  ['//api//v1//transfers', 'transfers-signed', 'decided'],
  ['/api/v1/x/../transfers', 'transfers-signed', 'decided'],
  ['/api/v1/x/..;/transfers', 'transfers-signed', 'decided'],
  ['/api/v1/%74ransfers', 'transfers-signed', 'decided'],
  ['/api/v1/transfers?x=/..', 'transfers-signed', 'decided'],
  ['/api/v1/transfers%2e', 'transfers-signed', 'path_variant'],
  ['/api/v1/transfers.', 'transfers-signed', 'path_variant'],
  ['/api/v1/transfers.json', 'transfers-signed', 'path_variant'],
  ['/api/v1/Transfers', 'transfers-signed', 'path_variant'],
  ['/API/V1/TRANSFERS/', 'transfers-signed', 'path_variant'],
  ['/api/v1/%54ransfers', 'transfers-signed', 'path_variant'],
  ['/api/v1/transfers%2F', 'transfers-signed', 'bad_request_headers'],
  ['/api/v1/transfers%5C', 'transfers-signed', 'bad_request_headers'],
  ['/api/v1/e2ee/transfers/', 'transfers-e2ee', 'decided'],
  ['/api/v1/e2ee/transfers;x=1/', 'transfers-e2ee', 'decided'],
  ['/api/v1/e2ee/Transfers', 'transfers-e2ee', 'path_variant'],
  ['/api/v1/accounts/AbC/', 'accounts', 'decided'],
  ['/api/v1/Accounts/abc', 'accounts', 'path_variant'],
];

async function corpus(e2e: EndToEnd, via: 'ext_proc' | 'ext_authz'): Promise<void> {
  let n = 0;
  for (const [path, route, want] of CORPUS) {
    const id = `${via}-path-${n++}`;
    const request = { method: 'POST', path, authority: 'api.example.com', headers: [['x-request-id', id], ['content-type', 'application/json']] as [string, string][], body: '{}' };
    const r = via === 'ext_proc' ? await e2e.envoy.request(request) : await e2e.authz.request(request);
    const what = `${via} POST ${path}`;
    assert.equal(r.upstreamRequest, undefined, `${what} reached the upstream unsigned`);
    const reason = get(r.headers, 'x-gatehouse-reason');
    if (want === 'decided') {
      assert.equal(r.status, 401, what);
      assert.equal(reason, 'signature_missing', what);
      assert.equal((await e2e.accessLine(id))['route_id'], route, `${what} was decided on ${route}`);
    } else {
      assert.equal(r.status, 400, what);
      assert.equal(reason, want, what);
    }
  }
}

for (const unmatched of ['deny', 'pass'] as const) {
  test(`path variants, unmatched: ${unmatched}: decided on the protected route or refused, over ext_proc and ext_authz`, async (t) => {
    const e2e = await endToEnd(t, await routes(unmatched));
    await corpus(e2e, 'ext_proc');
    await corpus(e2e, 'ext_authz');
  });
}

test('the weaker route keeps what is its own: other paths and methods under /api/ still reach it', async (t) => {
  const e2e = await endToEnd(t, await routes('deny'));
  for (const [method, path] of [['GET', '/api/v1/transfers/'], ['GET', '/api/v1/Transfers'], ['POST', '/api/v1/other/'], ['POST', '/api/v1/transfers-archive']] as const) {
    const r = await e2e.envoy.request({ method, path, authority: 'api.example.com' });
    assert.equal(r.status, 200, `${method} ${path}`);
    assert.equal(get(r.upstreamRequest!.headers, 'x-gateway'), 'gatehouse', `${method} ${path} went through the api route`);
  }
});
