// Attack classes: `unmatched: pass` and the always-on baseline; an upstream imitating gatehouse
// (docs/security.md "Unmatched requests", "gatehouse's own headers"). A request no route matches
// still runs sanitize over both adapters; gatehouse's own response headers never come from an
// upstream; the decision id is gatehouse's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from '../harness/helpers.js';
import { endToEnd } from '../support/gatehouse.js';

const CONFIG = `
unmatched: pass
routes:
  - id: api
    match: { path: { prefix: /api/ } }
`;

const FORGED: [string, string][] = [
  ['x-passport', 'eyJhbGciOiJub25lIn0.forged.'],
  ['x-gatehouse-client', 'partner-gold'],
  ['x-forwarded-client-cert', 'By=spiffe://cluster.local/ns/evil/sa/x;Hash=00'],
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

for (const adapter of ['ext_proc', 'ext_authz'] as const) {
  test(`${adapter}, unmatched: pass: forged identity headers are stripped, control characters and header floods refused`, async (t) => {
    const e2e = await endToEnd(t, CONFIG);
    const send = adapter === 'ext_proc' ? e2e.envoy.request.bind(e2e.envoy) : e2e.authz.request.bind(e2e.authz);
    const passed = await send({ method: 'GET', path: '/elsewhere/x', authority: 'api.example.com', headers: [...FORGED, ['accept', 'text/plain']] });
    assert.equal(passed.status, 200, 'passed through');
    for (const [name] of FORGED) assert.equal(get(passed.upstreamRequest!.headers, name), undefined, `${name} never reaches the upstream`);
    assert.equal(get(passed.upstreamRequest!.headers, 'accept'), 'text/plain');

    const crlf = await send({ method: 'GET', path: '/elsewhere/x', authority: 'api.example.com', headers: [['x-note', 'a\u0001b']] });
    assert.equal(get(crlf.headers, 'x-gatehouse-reason'), 'bad_request_headers', 'a control character in a value is refused');
    assert.equal(crlf.upstreamRequest, undefined);

    const flood: [string, string][] = Array.from({ length: 150 }, (_, i) => [`x-h${i}`, 'v']);
    const flooded = await send({ method: 'GET', path: '/elsewhere/x', authority: 'api.example.com', headers: flood }, { maxDurationMs: 20_000 });
    assert.equal(get(flooded.headers, 'x-gatehouse-reason'), 'request_headers_too_large', 'the default header count limit holds');
    assert.equal(flooded.upstreamRequest, undefined);
    assert.match(get(flooded.headers, 'x-gatehouse-decision-id') ?? '', UUID, "gatehouse's own decision id");
  });
}

test("ext_proc: an upstream's x-gatehouse-* response headers never reach the client, so an upstream cannot imitate a refusal", async (t) => {
  const e2e = await endToEnd(t, CONFIG, () => ({
    status: 403,
    headers: [['x-gatehouse-reason', 'account_disabled'], ['x-gatehouse-decision-id', 'fake-id'], ['x_gatehouse_reason', 'account_disabled'], ['content-type', 'text/plain']],
    body: 'no',
  }));
  for (const path of ['/api/x', '/elsewhere/x']) {
    const r = await e2e.envoy.request({ method: 'GET', path, authority: 'api.example.com' });
    assert.equal(r.status, 403, "the upstream's own status passes");
    for (const name of ['x-gatehouse-reason', 'x-gatehouse-decision-id', 'x_gatehouse_reason']) assert.equal(get(r.headers, name), undefined, `${path}: ${name} removed`);
    assert.equal(get(r.headers, 'content-type'), 'text/plain');
  }
});
