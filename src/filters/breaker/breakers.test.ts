// The process-wide breakers on their own: what counts, the single probe of half-open, and reuse
// across reloads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { breakerConfig } from './config.js';
import { Breakers, type Admission, type BreakerState } from './breakers.js';

const options = (overrides: Record<string, unknown> = {}) => {
  const { feature: _f, features: _fs, ...rest } = breakerConfig.parse({ volumeThreshold: 2, resetTimeoutMs: 100, ...overrides });
  return rest;
};
const admitted = (a: Admission) => {
  assert.ok(a.admitted, 'expected the request to be let through');
  return a.call;
};
const settled = () => sleep(5); // opossum counts the outcome on a later tick

test('requests that end without an upstream answer (forget) never open the breaker; failures do', async () => {
  const transitions: BreakerState[] = [];
  const breakers = new Breakers({ onStateChange: (_r, _f, s) => transitions.push(s) });
  const breaker = breakers.get('r', '*', options());
  for (let i = 0; i < 10; i++) admitted(breaker.admit()).forget();
  await settled();
  assert.equal(breaker.state, 'closed');
  for (let i = 0; i < 10; i++) admitted(breaker.admit()).fail('500');
  await settled();
  assert.equal(breaker.state, 'open');
  const refused = breaker.admit();
  assert.ok(!refused.admitted && refused.retryAfterSeconds === 1 && refused.state === 'open');
  assert.deepEqual(transitions, ['closed', 'open']);
  breakers.shutdown();
});

test('half-open lets exactly one probe through; its success closes the breaker', async () => {
  const breakers = new Breakers({ onStateChange: () => undefined });
  const breaker = breakers.get('r', '*', options());
  for (let i = 0; i < 2; i++) admitted(breaker.admit()).fail('503');
  await settled();
  assert.equal(breaker.state, 'open');
  await sleep(130);
  assert.equal(breaker.state, 'half_open');
  const probe = admitted(breaker.admit());
  const second = breaker.admit();
  assert.ok(!second.admitted, 'a second request while the probe is out is refused');
  probe.succeed();
  probe.fail('settles once: the later call is ignored');
  await settled();
  assert.equal(breaker.state, 'closed');
  breakers.shutdown();
});

test('the same options give the same breaker (a reload keeps its state); changed options a fresh one', async () => {
  const breakers = new Breakers({ onStateChange: () => undefined });
  const first = breakers.get('r', 'f', options({ resetTimeoutMs: 60_000 }));
  for (let i = 0; i < 2; i++) admitted(first.admit()).fail('500');
  await settled();
  assert.equal(breakers.get('r', 'f', options({ resetTimeoutMs: 60_000 })).state, 'open');
  assert.equal(breakers.get('r', 'other', options({ resetTimeoutMs: 60_000 })).state, 'closed', 'another feature is another breaker');
  assert.equal(breakers.get('r', 'f', options({ resetTimeoutMs: 30_000 })).state, 'closed', 'new options: a new breaker');
  breakers.shutdown();
});

test('config: a feature source needs its list of features, buckets must divide the window', () => {
  const messages = (config: unknown) => {
    const parsed = breakerConfig.safeParse(config);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.deepEqual(messages({ feature: { header: 'x-feature' } }), ['features: must list the feature values that get their own breaker: an open set would let clients create breakers at will']);
  assert.deepEqual(messages({ features: ['a'] }), ['feature: must say where the feature is read (header or param) when features are listed']);
  assert.deepEqual(messages({ rollingWindowMs: 10_000, rollingBuckets: 3 }), ['rollingBuckets: must divide rollingWindowMs (10000) evenly']);
  assert.deepEqual(messages({}), []);
});

test('a slow answer counts as a failure; an answer that arrives once the breaker is no longer closed counts for nothing', async () => {
  let clock = 0;
  const breakers = new Breakers({ onStateChange: () => undefined }, () => clock);
  const breaker = breakers.get('r', '*', options({ slowCallMs: 50, resetTimeoutMs: 60_000 }));
  const late = admitted(breaker.admit());
  for (let i = 0; i < 2; i++) {
    const call = admitted(breaker.admit());
    clock += 80;
    call.succeed(); // 2xx, but slower than slowCallMs
  }
  await settled();
  assert.equal(breaker.state, 'open');
  late.succeed();
  await settled();
  assert.equal(breaker.state, 'open', 'the late success neither closes it nor takes a probe slot');
  breakers.shutdown();
});

test('a half-open probe that ends without an upstream answer reopens the breaker', async () => {
  const breakers = new Breakers({ onStateChange: () => undefined });
  const breaker = breakers.get('r', '*', options());
  for (let i = 0; i < 2; i++) admitted(breaker.admit()).fail('500');
  await settled();
  await sleep(130);
  admitted(breaker.admit()).forget();
  await settled();
  assert.equal(breaker.state, 'open');
  breakers.shutdown();
});

test('slow calls are timed from the release upstream: a long upload before it never counts, a slow answer after it does', async () => {
  let now = 0;
  const breakers = new Breakers({ onStateChange: () => undefined }, () => now);
  const breaker = breakers.get('r', '*', options({ slowCallMs: 500 }));
  for (let i = 0; i < 2; i++) {
    const call = admitted(breaker.admit());
    now += 5_000; // the client uploads its body for 5 s
    call.released();
    now += 100; // the upstream answers in 100 ms
    call.succeed();
  }
  await settled();
  assert.equal(breaker.state, 'closed', 'the uploads were the clients\' time');
  for (let i = 0; i < 3; i++) {
    const call = admitted(breaker.admit());
    call.released();
    now += 600;
    call.succeed();
  }
  await settled();
  assert.equal(breaker.state, 'open', 'the upstream took 600 ms > 500 after the release');
  breakers.shutdown();
});
