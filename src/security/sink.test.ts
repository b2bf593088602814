// The security-event sink on its own: report never waits; the buffer is bounded and what it cannot
// hold is dropped and counted; a failing stream is retried and never loses what fits; close flushes
// within its bound; the disable rules count per subject, by trust, and disable once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { DisableRuleConfig } from '../config/types.js';
import { createMemoryStores } from '../stores/index.js';
import { storeFailure, type StoreFailure } from '../stores/types.js';
import type { SecurityEvent } from './events.js';
import { DisableRules, MemoryRuleWindows } from './rules.js';
import { SecurityEventSink, type EventStream } from './sink.js';

function event(overrides: Partial<SecurityEvent> = {}): SecurityEvent {
  return { code: 'signature_invalid', category: 'forgery', status: 401, route: 'pay', method: 'POST', requestId: 'r-1', subject: 'user-1', device: 'dev-1', trust: 'verified', at: 1_700_000_000_000, ...overrides };
}

class FakeStream implements EventStream {
  readonly description = 'fake';
  readonly appended: Record<string, string>[] = [];
  mode: 'ok' | 'down' | 'hang' = 'ok';
  private readonly hung: (() => void)[] = [];
  append(fields: Readonly<Record<string, string>>): Promise<{ ok: true } | StoreFailure> {
    if (this.mode === 'down') return Promise.resolve(storeFailure('unavailable', 'down'));
    if (this.mode === 'hang') {
      // a command timeout: answers unavailable after 30 ms
      return new Promise((resolve) => { this.hung.push(() => { resolve(storeFailure('unavailable', 'timeout')); }); setTimeout(() => { resolve(storeFailure('unavailable', 'timeout')); }, 30); });
    }
    this.appended.push({ ...fields });
    return Promise.resolve({ ok: true });
  }
}

const RULE: DisableRuleConfig = { name: 'forged', codes: ['signature_invalid', 'signature_replayed'], threshold: 3, windowSeconds: 60, minTrust: 'verified', reason: 'forged requests' };

function setUp(options: { stream?: FakeStream | undefined; maxBuffered?: number; rules?: DisableRuleConfig[]; now?: () => number } = {}) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ base: null }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  const registry = new Registry();
  const stores = createMemoryStores();
  const rules = new DisableRules(options.rules ?? [RULE], new MemoryRuleWindows(options.now), stores.accounts, options.now);
  const stream = 'stream' in options ? options.stream : new FakeStream();
  const sink = new SecurityEventSink({ logger, registry, stream, rules, maxBuffered: options.maxBuffered ?? 100, batchSize: 10, instance: 'gh-test', minRetryMs: 5, maxRetryMs: 20 });
  const metric = async (pattern: RegExp): Promise<number> => {
    const match = pattern.exec(await registry.metrics());
    return match === null ? Number.NaN : Number(match[1]);
  };
  return { sink, stream, stores, lines, metric };
}

async function until(condition: () => boolean, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('an event is logged, counted and appended with its fields; report returns before any write', async () => {
  const { sink, stream, lines, metric } = setUp({ rules: [] });
  sink.report(event({ clientAddress: '10.0.0.7:5000', detail: 'signature does not verify' }));
  assert.equal(stream!.appended.length, 0, 'nothing written synchronously');
  await until(() => stream!.appended.length === 1, 'appended');
  const fields = stream!.appended[0]!;
  assert.match(fields['event_id']!, /^[0-9a-f-]{36}$/);
  assert.deepEqual({ ...fields, event_id: 'x' }, {
    event_id: 'x', v: '1', code: 'signature_invalid', category: 'forgery', status: '401', route: 'pay', method: 'POST', request_id: 'r-1', decision_id: 'r-1',
    trust: 'verified', time: '2023-11-14T22:13:20.000Z', instance: 'gh-test', subject: 'user-1', device: 'dev-1', client_address: '10.0.0.7:5000', detail: 'signature does not verify',
  });
  const line = lines.find((l) => l['msg'] === 'security_event')!;
  assert.equal(line['level'], 40, 'warn');
  assert.equal(line['code'], 'signature_invalid');
  assert.equal(await metric(/^gatehouse_security_events_total\{code="signature_invalid",route="pay"\} (\d+)$/m), 1);
  assert.equal(await metric(/^gatehouse_security_events_written_total (\d+)$/m), 1);
});

test('Redis down: events wait up to maxBuffered, the rest are dropped and counted; nothing is lost of what fits once it is back', async () => {
  const stream = new FakeStream();
  stream.mode = 'down';
  const { sink, lines, metric } = setUp({ stream, maxBuffered: 5, rules: [] });
  for (let i = 0; i < 12; i++) sink.report(event({ requestId: `r-${i}` }));
  assert.equal(sink.pending, 5, 'the buffer holds its bound');
  assert.equal(await metric(/^gatehouse_security_events_dropped_total\{reason="buffer_full"\} (\d+)$/m), 7);
  assert.ok(lines.some((l) => l['msg'] === 'security events dropped' && l['reason'] === 'buffer_full'), 'the drop is logged');
  await until(() => sink.pending === 5 && stream.appended.length === 0, 'retrying');
  await new Promise((r) => setTimeout(r, 60));
  assert.ok((await metric(/^gatehouse_security_event_retries_total (\d+)$/m)) >= 1, 'failed rounds are counted');
  stream.mode = 'ok';
  await until(() => sink.pending === 0, 'flushed after recovery');
  assert.deepEqual(stream.appended.map((f) => f['request_id']), ['r-0', 'r-1', 'r-2', 'r-3', 'r-4']);
  assert.equal(await metric(/^gatehouse_security_events_buffered (\d+)$/m), 0);
});

test('close flushes what it can within its bound, then drops the rest counted as shutdown; later events are dropped too', async () => {
  const ok = setUp({ rules: [] });
  for (let i = 0; i < 30; i++) ok.sink.report(event({ requestId: `r-${i}` }));
  assert.deepEqual(await ok.sink.close(1_000), { flushed: true, dropped: 0 });
  assert.equal(ok.stream!.appended.length, 30);

  const stream = new FakeStream();
  stream.mode = 'hang';
  const { sink, metric } = setUp({ stream, rules: [] });
  for (let i = 0; i < 4; i++) sink.report(event({ requestId: `r-${i}` }));
  const started = Date.now();
  assert.deepEqual(await sink.close(100), { flushed: false, dropped: 4 });
  assert.ok(Date.now() - started < 1_000, `close is bounded (${Date.now() - started} ms)`);
  assert.equal(await metric(/^gatehouse_security_events_dropped_total\{reason="shutdown"\} (\d+)$/m), 4);
  sink.report(event());
  assert.equal(await metric(/^gatehouse_security_events_dropped_total\{reason="shutdown"\} (\d+)$/m), 5);
});

test('memory stores: no stream, the log and the counter only, and the rules still apply', async () => {
  const { sink, stores, lines } = setUp({ stream: undefined });
  for (let i = 0; i < 3; i++) sink.report(event({ requestId: `r-${i}` }));
  await until(() => sink.pending === 0, 'rules applied');
  const disabled = await stores.accounts.isDisabled('user-1');
  assert.deepEqual(disabled.ok && disabled.disabled && { ...disabled.disabled, at: 0 }, { reason: 'forged requests', by: 'gatehouse-rule:forged', at: 0 });
  assert.equal(lines.filter((l) => l['msg'] === 'security_event').length, 3);
  assert.ok(lines.some((l) => l['msg'] === 'account disabled by rule' && l['subject'] === 'user-1' && l['rule'] === 'forged'));
});

test('rules: counted per subject within the window, only codes and trust they name, disable once, an operator record is kept', async () => {
  let now = 1_000_000;
  const { sink, stores, metric } = setUp({ stream: undefined, now: () => now });
  const settle = () => until(() => sink.pending === 0, 'settled');
  // a bare claim, another code, another subject: none count for user-1
  sink.report(event({ trust: 'claimed' }));
  const { subject: _none, ...anonymous } = event({ trust: 'none' });
  sink.report(anonymous);
  sink.report(event({ code: 'signature_stale', category: 'timing' }));
  sink.report(event({ subject: 'user-2' }));
  sink.report(event({ subject: 'user-2' }));
  sink.report(event({ code: 'signature_replayed', category: 'replay', trust: 'verified' }));
  await settle();
  now += 61_000; // out of the window
  sink.report(event());
  sink.report(event({ trust: 'claimed' }));
  sink.report(event({ trust: 'credential' }));
  sink.report(event({ trust: 'credential' }));
  sink.report(event({ subject: 'user-3' }));
  sink.report(event());
  await settle();
  assert.deepEqual(await stores.accounts.isDisabled('user-1'), { ok: true, disabled: undefined }, 'two in the window (a claim, or a credential alone, does not count)');
  sink.report(event());
  await settle();
  const disabled = await stores.accounts.isDisabled('user-1');
  assert.ok(disabled.ok && disabled.disabled?.by === 'gatehouse-rule:forged');
  assert.equal(await metric(/^gatehouse_security_accounts_disabled_total\{rule="forged"\} (\d+)$/m), 1);
  sink.report(event());
  await settle();
  assert.equal(await metric(/^gatehouse_security_accounts_disabled_total\{rule="forged"\} (\d+)$/m), 1, 'already disabled: not again');
  // an operator's record is not overwritten by the rule
  await stores.accounts.disable('user-2', 'manual', 'ops', 1);
  sink.report(event({ subject: 'user-2' }));
  await settle();
  assert.deepEqual(await stores.accounts.isDisabled('user-2'), { ok: true, disabled: { reason: 'manual', by: 'ops', at: 1 } });
});
