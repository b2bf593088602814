// Attack corpus, headers (issue 21, classes 5 and 9): underscore spellings of reserved headers never
// reach the upstream (in either spelling), limits count bytes, and control characters are refused in
// pseudo-headers too. Over ext_proc and ext_authz.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEnd } from '../support/gatehouse.js';
import { get } from '../harness/helpers.js';

const ROUTES = `
routes:
  - id: api
    match: { path: { prefix: /api/ } }
`;

const RESERVED = ['x-passport', 'x-gatehouse-client', 'x-gatehouse-decision-id', 'x-forwarded-client-cert'];

for (const via of ['ext_proc', 'ext_authz'] as const) {
  test(`over ${via}: x_passport, x_gatehouse_client, x_forwarded_client_cert are stripped; the upstream sees neither spelling`, async (t) => {
    const e2e = await endToEnd(t, ROUTES);
    const forged: [string, string][] = [
      ['x_passport', 'eyJforged'],
      ['x_gatehouse_client', 'admin'],
      ['x_gatehouse_decision_id', 'fake'],
      ['x_forwarded_client_cert', 'By=spiffe://evil'],
      ['x-passport', 'eyJforged2'],
      ['x_note', 'kept'],
    ];
    const request = { method: 'GET', path: '/api/x', authority: 'api.example.com', headers: forged };
    const r = via === 'ext_proc' ? await e2e.envoy.request(request) : await e2e.authz.request(request);
    assert.equal(r.status, 200);
    const seen = r.upstreamRequest!.headers.map(([name]) => name.replaceAll('_', '-'));
    for (const name of RESERVED) assert.ok(!seen.includes(name), `${name} reached the upstream in some spelling`);
    assert.equal(get(r.upstreamRequest!.headers, 'x_note'), 'kept', 'an ordinary underscore header is left alone');
  });

  test(`over ${via}: 8,000 × "€" fails the 8,192-byte value limit (431)`, async (t) => {
    const e2e = await endToEnd(t, ROUTES);
    const request = { method: 'GET', path: '/api/x', authority: 'api.example.com', headers: [['x-note', '€'.repeat(8_000)]] as [string, string][] };
    const r = via === 'ext_proc' ? await e2e.envoy.request(request) : await e2e.authz.request(request);
    assert.equal(r.status, 431);
    assert.equal(get(r.headers, 'x-gatehouse-reason'), 'request_headers_too_large');
    assert.equal(r.upstreamRequest, undefined);
  });
}
