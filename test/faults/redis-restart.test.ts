// Fault: Redis killed (SIGKILL, as a crash) and restarted empty (no persistence) while signed
// requests keep coming. Promises (docs/resilience.md): a fail-closed route answers 200 or 503
// dependency_unavailable during the outage, never a crash; a fail-open route continues; recovery
// within seconds; and no request signed before the loss is accepted again afterwards, on either
// route: a replay of a captured request is refused 401 nonce_store_reset, never failed open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { signRequest } from '../../sdk/app/signing.js';
import { createWorld, type World } from '../../src/protocol/signing/test-support.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { endToEnd } from '../support/gatehouse.js';
import { skipWithoutRedis, TestRedisServer } from '../support/redis.js';
import { signedFilterConfig } from '../support/signed-config.js';

const AUTHORITY = 'api.example.com';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
/** the routes' allowed clock skew: a loss refuses what was signed up to this long after it */
const SKEW_SECONDS = 1;
/** requests captured before the loss, replayed after it */
const CAPTURED = 20;
/** concurrent senders of fresh requests while Redis goes down and comes back */
const SENDERS = 4;

async function signed(world: World, path: string): Promise<ClientRequest> {
  const headers = await signRequest({ method: 'GET', authority: AUTHORITY, path, query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() });
  return { method: 'GET', path, authority: AUTHORITY, headers: Object.entries(headers) };
}

test('Redis killed and restarted empty under load: fail-closed 200/503 only, fail-open continues, recovery in seconds, zero replays accepted', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, `
stores: { kind: redis, keyPrefix: "fault:", redis: { url: "${redis.url}" } }
routes:
  - id: closed
    match: { path: { prefix: /closed/ } }
    filters:
      - signed: ${await signedFilterConfig(world, `, clockSkewSeconds: ${SKEW_SECONDS}, failureMode: closed`)}
  - id: open
    match: { path: { prefix: /open/ } }
    filters:
      - signed: ${await signedFilterConfig(world, `, clockSkewSeconds: ${SKEW_SECONDS}, failureMode: open`)}
`);
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });

  // before: each captured request accepted once
  const captured: ClientRequest[] = [];
  for (let i = 0; i < CAPTURED; i++) captured.push(await signed(world, `/${i % 2 === 0 ? 'closed' : 'open'}/captured-${i}`));
  for (const request of captured) assert.equal((await e2e.envoy.request(request)).status, 200, request.path);

  // under load: senders of fresh requests on both routes while Redis is killed and restarted
  const outcomes = { closed: new Map<string, number>(), open: new Map<string, number>() };
  let sending = true;
  let sent = 0;
  const sender = async (n: number): Promise<void> => {
    for (let i = 0; sending; i++) {
      const route = (n + i) % 2 === 0 ? 'closed' : 'open';
      const result = await e2e.envoy.request(await signed(world, `/${route}/load-${n}-${i}`));
      const key = `${result.status} ${get(result.headers, 'x-gatehouse-reason') ?? ''}`.trim();
      outcomes[route].set(key, (outcomes[route].get(key) ?? 0) + 1);
      sent++;
    }
  };
  const senders = Array.from({ length: SENDERS }, (_, n) => sender(n));
  const sentBefore = async (count: number): Promise<void> => { const until = sent + count; while (sent < until) await new Promise((r) => setTimeout(r, 5)); };
  await sentBefore(20);
  await redis.stop();
  await sentBefore(20); // requests during the outage
  await redis.startAgain(); // --save "" --appendonly no: an empty Redis
  const restartedAt = performance.now();
  // recovery: a freshly signed request on the fail-closed route is accepted again
  let recoveredMs = 0;
  for (let attempt = 0; ; attempt++) {
    await e2e.gatehouse.deps.stores.devices.put(world.device); // the device record went with the data: enrolled again
    if ((await e2e.envoy.request(await signed(world, `/closed/recovery-${attempt}`))).status === 200) {
      recoveredMs = performance.now() - restartedAt;
      break;
    }
    assert.ok(performance.now() - restartedAt < 60_000, 'recovered within a minute');
    await new Promise((r) => setTimeout(r, 100));
  }
  sending = false;
  await Promise.all(senders);

  // the promises
  for (const key of outcomes.closed.keys()) assert.ok(['200', '503 dependency_unavailable', '401 nonce_store_reset', '403 device_revoked'].includes(key), `fail-closed answered ${key}`);
  for (const key of outcomes.open.keys()) assert.ok(['200', '401 nonce_store_reset', '403 device_revoked'].includes(key), `fail-open answered ${key}`);
  assert.ok((outcomes.open.get('200') ?? 0) > 0, 'the fail-open route kept answering');
  let replaysAccepted = 0;
  for (const request of captured) {
    const again = await e2e.envoy.request(request);
    if (again.status === 200) replaysAccepted++;
    else assert.equal(get(again.headers, 'x-gatehouse-reason'), 'nonce_store_reset', request.path);
  }
  assert.equal(replaysAccepted, 0, 'no request signed before the loss is accepted twice, on either route');
  // the figures for docs/resilience.md
  t.diagnostic(`redis restart: sent ${sent} under load; fail-closed ${JSON.stringify([...outcomes.closed])}; fail-open ${JSON.stringify([...outcomes.open])}; replays accepted ${replaysAccepted}/${CAPTURED}; recovered ${Math.round(recoveredMs)} ms after the restart`);
});
