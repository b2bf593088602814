// Shadow mode: a route (or some of its filters) in shadow logs, counts and reports its denials in
// Envoy's dynamic metadata, and the request goes on, over ext_proc and ext_authz alike; a shadowed
// denial is never a security event, so a rule on trial cannot disable an account.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { buildRouteTable } from '../../src/config/routes.js';
import { createFilterDeps } from '../../src/filters/deps.js';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import { get } from '../harness/helpers.js';
import { endToEnd } from '../support/gatehouse.js';
import { signedFilterConfig } from '../support/signed-config.js';
import { TEST_REGISTRY } from '../support/test-filters.js';

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

async function routes(): Promise<string> {
  const world = await createWorld({ now: nowSeconds() });
  return `
securityEvents:
  rules:
    - { name: forged, codes: [signature_invalid], threshold: 1, windowSeconds: 60 }
routes:
  - id: trial
    match: { path: { prefix: /trial/ } }
    mode: shadow
    filters:
      - signed: ${await signedFilterConfig(world)}
  - id: partly
    match: { path: { prefix: /partly/ } }
    shadowFilters: [signed]
    filters:
      - signed: ${await signedFilterConfig(world)}
      - sanitize: { limits: { maxHeaders: 5 } }
`;
}

for (const adapter of ['ext_proc', 'ext_authz'] as const) {
  test(`${adapter}: a shadowed denial is logged, counted and put in dynamic metadata, and the request continues`, async (t) => {
    const e2e = await endToEnd(t, await routes());
    const send = adapter === 'ext_proc' ? e2e.envoy.request.bind(e2e.envoy) : e2e.authz.request.bind(e2e.authz);
    const forged: [string, string][] = [['signature-input', 'sig1=("@method");created=1;keyid="x";alg="ecdsa-p256-sha256"'], ['signature', 'sig1=:AAAA:'], ['device-credential', 'a.b.c'], ['x-request-id', `shadow-${adapter}`]];
    const r = await send({ method: 'GET', path: '/trial/x', authority: 'api.example.com', headers: forged });
    assert.equal(r.status, 200, 'the request reaches the upstream');
    assert.ok(r.upstreamRequest, 'upstream called');
    assert.equal(get(r.headers, 'x-gatehouse-reason'), undefined, 'the client sees no refusal');
    // ext_authz: Envoy files the Check's metadata under its filter's namespace (11.x)
    const metadata = (adapter === 'ext_proc' ? r.dynamicMetadata['gatehouse'] : (r.dynamicMetadata['envoy.filters.http.ext_authz']?.['gatehouse'] as Record<string, unknown> | undefined)) ?? {};
    assert.equal(metadata['decision'], 'shadow_deny');
    const reason = metadata['reason'];
    assert.ok(typeof reason === 'string' && reason.startsWith('signature_') || reason === 'credential_invalid', `the reason enforcing would have given: ${String(reason)}`);
    const line = await e2e.accessLine(`shadow-${adapter}`);
    assert.equal(line['decision'], 'shadow_deny');
    assert.deepEqual((line['shadow'] as { filter: string }[]).map((s) => s.filter), ['signed']);
    const metrics = await (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
    assert.match(metrics, new RegExp(`^gatehouse_shadow_denials_total\\{route="trial",filter="signed",reason="${reason}"\\} 1$`, 'm'));
    assert.match(metrics, new RegExp(`^gatehouse_requests_total\\{protocol="${adapter}",route="trial",[^}]*decision="shadow_deny"[^}]*\\} 1$`, 'm'));
    assert.ok(!e2e.logs.some((l) => l['msg'] === 'security_event'), 'no security event: a trial rule never feeds the disable rules');

    const partly = await send({ method: 'GET', path: '/partly/x', authority: 'api.example.com', headers: [...forged, ['a', '1'], ['b', '2'], ['c', '3']] });
    assert.equal(get(partly.headers, 'x-gatehouse-reason'), 'request_headers_too_large', 'a filter not in shadowFilters still enforces');
    assert.equal(partly.upstreamRequest, undefined);
  });
}

test('shadowFilters must name filters the route runs: a config error naming the field', () => {
  const parsed = parseConfig(`routes:\n  - id: r\n    match: { path: { prefix: / } }\n    shadowFilters: [signd]\n    filters: []\n`, 'shadow.yaml', { registry: TEST_REGISTRY });
  assert.ok(parsed.ok);
  const built = buildRouteTable(parsed.config, { registry: TEST_REGISTRY, deps: createFilterDeps() });
  assert.equal(built.ok, false);
  const messages = built.ok ? [] : built.errors.map((e) => e.format());
  assert.ok(messages.some((m) => m.includes('routes[0]') && m.includes('shadowFilters[0]') && m.includes('"signd" is not a filter this route runs')), messages.join('\n'));
});
