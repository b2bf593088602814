// Two gatehouse replicas on one Redis, behind their own Envoy stand-ins: a signed request accepted by
// one is refused by the other, every time, also when both get it at the same moment (a replay raced
// through two pods).
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
const REQUESTS = 40;

async function signed(world: World, path: string): Promise<ClientRequest> {
  const headers = await signRequest({ method: 'GET', authority: AUTHORITY, path, query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: Math.floor(Date.now() / 1000) });
  return { method: 'GET', path, authority: AUTHORITY, headers: Object.entries(headers) };
}

test('two replicas on one Redis: of each signed request sent to both, at once or one after the other, exactly one is accepted', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const config = `
stores: { kind: redis, keyPrefix: "two:", redis: { url: "${redis.url}" } }
routes:
  - id: pay
    match: { path: { prefix: /pay/ } }
    filters:
      - signed: ${await signedFilterConfig(world)}
`;
  const one = await endToEnd(t, config);
  const two = await endToEnd(t, config);
  assert.deepEqual(await one.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  const tally = new Map<string, number>();
  let acceptedTwice = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const request = await signed(world, `/pay/${i}`);
    // even: both at once; odd: one after the other, the order alternating
    const answers = i % 2 === 0
      ? await Promise.all([one.envoy.request(request), two.envoy.request(request)])
      : i % 4 === 1 ? [await one.envoy.request(request), await two.envoy.request(request)] : [await two.envoy.request(request), await one.envoy.request(request)];
    const accepted = answers.filter((a) => a.status === 200).length;
    if (accepted > 1) acceptedTwice++;
    assert.equal(accepted, 1, `request ${i}: ${answers.map((a) => `${a.status} ${get(a.headers, 'x-gatehouse-reason') ?? ''}`).join(', ')}`);
    for (const a of answers) {
      const key = `${a.status} ${get(a.headers, 'x-gatehouse-reason') ?? ''}`.trim();
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
  }
  assert.deepEqual(Object.fromEntries(tally), { '200': REQUESTS, '401 signature_replayed': REQUESTS });
  t.diagnostic(`two replicas: ${REQUESTS} requests each sent to both; accepted twice ${acceptedTwice}`);
});
