// The breaker end to end behind the Envoy stand-in: a failing upstream opens it after the configured
// volume, clients then get 503 at once (Retry-After, nothing reaches the upstream), half-open lets one
// probe through, recovery closes it; one feature's breaker does not block another; a reload keeps it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { endToEnd } from '../support/gatehouse.js';
import { get } from '../harness/helpers.js';
import { parseConfig } from '../support/config.js';
import { buildRouteTable } from '../../src/config/routes.js';
import { TEST_REGISTRY } from '../support/test-filters.js';

// opossum's reset timer is wall-clock: the reset is long enough that the request right after the
// breaker opens lands inside it on a busy machine, and the tests wait past it to probe.
const RESET_MS = 2000;
const ROUTES = `
routes:
  - id: pay
    match: { path: { template: "/pay/:feature/:rest" } }
    filters:
      - breaker:
          volumeThreshold: 4
          errorThresholdPercentage: 50
          resetTimeoutMs: ${RESET_MS}
          feature: { param: feature }
          features: [transfers, cards]
  - id: plain
    match: { path: { prefix: /plain/ } }
    filters:
      - breaker: { volumeThreshold: 3, resetTimeoutMs: 60000 }
`;

/** An upstream whose answer per path prefix the test changes, counting what reaches it. */
function upstreamPlan() {
  const plan = { status: new Map<string, number>(), hits: new Map<string, number>() };
  const handler = (req: { path: string }) => {
    const key = req.path.split('/').slice(0, 3).join('/');
    plan.hits.set(key, (plan.hits.get(key) ?? 0) + 1);
    return { status: plan.status.get(key) ?? 200, headers: [['content-type', 'text/plain']] as [string, string][], body: 'up' };
  };
  return { plan, handler };
}

async function metricsOf(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

test('a failing feature opens its breaker after the volume; 503 at once with Retry-After; other features pass; a probe closes it once the upstream recovers', async (t) => {
  const { plan, handler } = upstreamPlan();
  const e2e = await endToEnd(t, ROUTES, handler);
  const send = (path: string, id?: string) => e2e.envoy.request({ method: 'POST', path, authority: 'api.example.com', headers: id ? [['x-request-id', id]] : [] });
  plan.status.set('/pay/transfers', 503);
  for (let i = 0; i < 4; i++) assert.equal((await send(`/pay/transfers/${i}`)).status, 503, 'the upstream failure passes through while closed');
  assert.equal(plan.hits.get('/pay/transfers'), 4);

  const refused = await send('/pay/transfers/5', 'brk-open');
  assert.equal(refused.status, 503);
  assert.equal(get(refused.headers, 'x-gatehouse-reason'), 'circuit_open');
  const retryAfter = Number(get(refused.headers, 'retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= RESET_MS / 1000, `Retry-After ${String(retryAfter)} s: what is left of the ${String(RESET_MS)} ms reset, rounded up`);
  assert.equal(plan.hits.get('/pay/transfers'), 4, 'refused before any upstream work');
  assert.match((await e2e.accessLine('brk-open'))['detail'] as string, /breaker of route pay, feature transfers is open/);

  assert.equal((await send('/pay/cards/1')).status, 200, "another feature's breaker is closed");
  assert.match(await metricsOf(e2e.gatehouse.adminPort), /^gatehouse_breaker_state\{route="pay",feature="transfers"\} 2$/m);

  plan.status.set('/pay/transfers', 200); // the upstream recovers
  await sleep(RESET_MS + 100);
  const probe = await send('/pay/transfers/probe');
  assert.equal(probe.status, 200, 'half-open: the probe goes through');
  assert.equal(plan.hits.get('/pay/transfers'), 5);
  assert.equal((await send('/pay/transfers/after')).status, 200, 'closed again');
  const metrics = await metricsOf(e2e.gatehouse.adminPort);
  assert.match(metrics, /^gatehouse_breaker_state\{route="pay",feature="transfers"\} 0$/m);
  for (const to of ['open', 'half_open', 'closed']) assert.match(metrics, new RegExp(`^gatehouse_breaker_transitions_total\\{route="pay",feature="transfers",to="${to}"\\} 1$`, 'm'));
  const warn = e2e.logs.find((l) => l['msg'] === 'breaker opened: requests are refused with 503 circuit_open until a probe succeeds');
  assert.deepEqual([warn?.['route_id'], warn?.['feature']], ['pay', 'transfers']);
});

test('a failed probe reopens it; client errors (4xx) never count; unlisted feature values share the route breaker', async (t) => {
  const { plan, handler } = upstreamPlan();
  const e2e = await endToEnd(t, ROUTES, handler);
  const send = (path: string) => e2e.envoy.request({ method: 'GET', path, authority: 'api.example.com' });
  plan.status.set('/pay/cards', 404);
  for (let i = 0; i < 10; i++) assert.equal((await send(`/pay/cards/${i}`)).status, 404);
  assert.equal((await send('/pay/cards/x')).status, 404, '4xx answers are the client\'s fault: the breaker stays closed');

  plan.status.set('/pay/other', 500);
  plan.status.set('/pay/another', 500);
  for (const feature of ['other', 'another', 'other', 'another']) await send(`/pay/${feature}/1`);
  const shared = await send('/pay/another/2');
  assert.equal(get(shared.headers, 'x-gatehouse-reason'), 'circuit_open', 'unlisted features share the route breaker ("*")');
  await sleep(RESET_MS + 100);
  assert.equal((await send('/pay/other/probe')).status, 500, 'the probe fails upstream');
  assert.equal(get((await send('/pay/other/again')).headers, 'x-gatehouse-reason'), 'circuit_open', 'and the breaker reopens');
});

test('a reload keeps an open breaker open', async (t) => {
  const { plan, handler } = upstreamPlan();
  const e2e = await endToEnd(t, ROUTES, handler);
  plan.status.set('/plain/x', 502);
  for (let i = 0; i < 3; i++) await e2e.envoy.request({ method: 'GET', path: '/plain/x', authority: 'api.example.com' });
  assert.equal(get((await e2e.envoy.request({ method: 'GET', path: '/plain/x', authority: 'api.example.com' })).headers, 'x-gatehouse-reason'), 'circuit_open');
  const parsed = parseConfig(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\n${ROUTES}`, 'reloaded.yaml', { registry: TEST_REGISTRY });
  assert.ok(parsed.ok);
  const rebuilt = buildRouteTable(parsed.config, { registry: TEST_REGISTRY, deps: e2e.gatehouse.deps });
  assert.ok(rebuilt.ok);
  e2e.gatehouse.routes.replace(rebuilt.table);
  plan.status.set('/plain/x', 200);
  assert.equal(get((await e2e.envoy.request({ method: 'GET', path: '/plain/x', authority: 'api.example.com' })).headers, 'x-gatehouse-reason'), 'circuit_open', 'still open after the reload');
});

test('(attack) slow uploads do not open the breaker: slow calls are timed from the request\'s release upstream, not its headers; a slow upstream still opens it', async (t) => {
  const SLOW_MS = 1500;
  const e2e = await endToEnd(
    t,
    `
routes:
  - id: upload
    match: { path: { prefix: /upload/ } }
    filters:
      - breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 60000, slowCallMs: ${SLOW_MS} }
  - id: slow
    match: { path: { prefix: /slow/ } }
    filters:
      - breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 60000, slowCallMs: ${SLOW_MS} }
`,
    (req) => ({ status: 200, headers: [['content-type', 'text/plain']], body: 'ok', ...(req.path.startsWith('/slow/') ? { delayMs: SLOW_MS + 300 } : {}) }),
  );
  // an anonymous client trickles its body: 4 chunks 600 ms apart, longer than slowCallMs in all
  const trickled = (i: number) =>
    e2e.envoy.request({ method: 'POST', path: `/upload/${i}`, authority: 'api.example.com', headers: [['content-type', 'application/octet-stream']], body: [0, 1, 2, 3].map((n) => Buffer.from(`part-${n};`)) }, { pace: { trickleMs: 600 } });
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const answer = await trickled(i);
    assert.equal(answer.status, 200, `upload ${i}: ${answer.body.toString()}`);
    assert.ok(performance.now() - started >= SLOW_MS, 'the upload itself took longer than slowCallMs');
  }
  const after = await e2e.envoy.request({ method: 'POST', path: '/upload/after', authority: 'api.example.com', body: 'x' });
  assert.equal(after.status, 200, 'the breaker stayed closed: legitimate requests pass');
  assert.match(await metricsOf(e2e.gatehouse.adminPort), /^gatehouse_breaker_state\{route="upload",feature="\*"\} 0$/m);

  // control: an upstream that is slow itself still counts
  for (let i = 0; i < 2; i++) assert.equal((await e2e.envoy.request({ method: 'GET', path: `/slow/${i}`, authority: 'api.example.com' })).status, 200);
  assert.equal(get((await e2e.envoy.request({ method: 'GET', path: '/slow/after', authority: 'api.example.com' })).headers, 'x-gatehouse-reason'), 'circuit_open');
});
