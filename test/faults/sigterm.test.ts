// Fault: a pod rolls. The real gatehouse process gets SIGTERM while streams are open mid-phase
// (request headers answered, the upstream not yet; a body on its way) and new ones keep coming.
// Promises (docs/resilience.md, docs/operations.md "Shutdown"): every stream gatehouse had accepted
// completes correctly; every stream after the drain began is refused with gRPC UNAVAILABLE (on a
// connection gatehouse had: its answer or GOAWAY; on a new one: connection refused, also
// UNAVAILABLE), which Envoy treats as a failure of the processor (envoy-behaviours 3.8, 3.10); the
// process exits 0 within shutdown.graceMs once they are done, and cancels what is still open at the
// end of the grace period.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RawExtProcStream, requestHeaders, responseHeaders } from '../support/extproc-client.js';
import { startGatehouseProcess, type GatehouseProcess } from '../support/process.js';

const ANSWER_WAIT_MS = 60_000;
/** time the process may take after the drain to close the stores and flush telemetry (a busy machine) */
const AFTER_DRAIN_MS = 15_000;

function configFile(t: { after: (fn: () => void) => void }, graceMs: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sigterm-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, `
unmatched: deny
defaults: { budgetMs: 20000 }
envoy: { messageTimeoutMs: 30000 }
shutdown: { graceMs: ${graceMs} }
telemetry: { logLevel: info }
routes:
  - id: api
    match: { path: { prefix: /api/ } }
    filters:
      - headers: { request: { set: { x-seen: "1" } }, response: { set: { x-answered: "1" } } }
`);
  return file;
}

const request = (path: string): [string, string][] => [[':method', 'POST'], [':path', path], [':authority', 'api.example.com'], [':scheme', 'https'], ['content-type', 'application/json']];

function clients(t: { after: (fn: () => void) => void }, gatehouse: GatehouseProcess, count: number): grpc.Client[] {
  const made = Array.from({ length: count }, () => new grpc.Client(`127.0.0.1:${gatehouse.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  t.after(() => { for (const client of made) client.close(); });
  return made;
}

/** A stream as Envoy runs one request, from the request headers on; `held` resolves once they are answered. */
class EnvoyRequest {
  readonly stream: RawExtProcStream;
  constructor(client: grpc.Client, path: string, withBody: boolean) {
    this.stream = new RawExtProcStream(client);
    this.stream.send(requestHeaders(request(path), !withBody));
  }
  /** the rest of the request: body (if any), response headers, Envoy's close; throws on any wrong answer */
  async finish(withBody: boolean): Promise<void> {
    if (withBody) {
      this.stream.send({ request: { case: 'requestBody', value: { body: Buffer.from('{"amount":"1.00"}'), endOfStream: true } } });
      assert.equal((await this.stream.next(ANSWER_WAIT_MS)).response.case, 'requestBody');
    }
    this.stream.send(responseHeaders([[':status', '200']], true));
    assert.equal((await this.stream.next(ANSWER_WAIT_MS)).response.case, 'responseHeaders');
    this.stream.closeLikeEnvoy();
  }
}

test('SIGTERM under load: every open stream completes, every later one is refused UNAVAILABLE, exit 0 within the grace period', async (t) => {
  const GRACE_MS = 20_000;
  const OPEN = 200;
  const gatehouse = await startGatehouseProcess({ GATEHOUSE_CONFIG: configFile(t, GRACE_MS) });
  t.after(() => { gatehouse.child.kill('SIGKILL'); });
  const pool = clients(t, gatehouse, 4);

  // streams mid-phase: request headers answered, half of them with a body still to come
  const open = Array.from({ length: OPEN }, (_, i) => ({ request: new EnvoyRequest(pool[i % pool.length]!, `/api/open-${i}`, i % 2 === 0), withBody: i % 2 === 0 }));
  for (const { request: r } of open) assert.equal((await r.stream.next(ANSWER_WAIT_MS)).response.case, 'requestHeaders');

  // new requests keep coming, one after another on each connection, through the shutdown
  const outcomes = { completed: 0, refused: 0, failed: [] as string[] };
  let sending = true;
  const sender = async (client: grpc.Client, lane: number): Promise<void> => {
    for (let i = 0; sending; i++) {
      const withBody = i % 2 === 1;
      const r = new EnvoyRequest(client, `/api/new-${lane}-${i}`, withBody);
      const first = await Promise.race([r.stream.next(ANSWER_WAIT_MS).then(() => 'answered' as const), r.stream.ended]);
      if (first === 'answered') {
        // accepted: it must complete whatever happens meanwhile
        try {
          await r.finish(withBody);
          outcomes.completed++;
        } catch (error) {
          outcomes.failed.push(`accepted stream failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      } else if (first.code === grpc.status.UNAVAILABLE) {
        outcomes.refused++;
      } else {
        outcomes.failed.push(`refused with ${grpc.status[first.code]}: ${first.details}`);
      }
    }
  };
  const senders = pool.map((client, lane) => sender(client, lane));
  await new Promise((r) => setTimeout(r, 500));

  const signalledAt = performance.now();
  gatehouse.child.kill('SIGTERM');
  await gatehouse.waitFor((l) => l['msg'] === 'draining: readiness off, refusing new streams');
  // once draining, new streams are refused (the senders see it), and a new connection too
  const deadline = Date.now() + ANSWER_WAIT_MS;
  while (outcomes.refused < 20) {
    assert.ok(Date.now() < deadline, `new streams refused after SIGTERM: ${JSON.stringify(outcomes)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const [fresh] = clients(t, gatehouse, 1);
  const onNewConnection = new RawExtProcStream(fresh!);
  onNewConnection.send(requestHeaders(request('/api/late'), true));
  const late = await onNewConnection.ended;
  assert.equal(late.code, grpc.status.UNAVAILABLE, `a new connection after SIGTERM: ${late.details}`);

  // the streams open before SIGTERM finish now, each correctly
  const openResults = await Promise.allSettled(open.map(({ request: r, withBody }) => r.finish(withBody)));
  sending = false;
  await Promise.all(senders);
  const openFailed = openResults.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
  assert.deepEqual(openFailed, [], 'every stream open at SIGTERM completed');
  assert.deepEqual(outcomes.failed, [], 'every new stream either completed (accepted before the drain) or was refused UNAVAILABLE');
  assert.ok(outcomes.completed > 0, 'load was flowing before SIGTERM');

  assert.equal(await gatehouse.exited, 0);
  const exitMs = performance.now() - signalledAt;
  const stopped = gatehouse.lines.find((l) => l['msg'] === 'stopped');
  assert.equal(stopped?.['finished_in_grace'], true, 'the drain finished within the grace period');
  assert.ok(exitMs < GRACE_MS + AFTER_DRAIN_MS, `exited ${Math.round(exitMs)} ms after SIGTERM`);
  const logged = gatehouse.lines.filter((l) => l['msg'] === 'request' && String(l['path']).startsWith('/api/open-'));
  assert.equal(logged.filter((l) => l['status'] === 200).length, OPEN, 'each open request logged with the status the client got');
  t.diagnostic(`SIGTERM under load: ${OPEN} streams open mid-phase → ${OPEN - openFailed.length} completed, ${openFailed.length} failed; new streams: ${outcomes.completed} completed (accepted before the drain), ${outcomes.refused} refused UNAVAILABLE, ${outcomes.failed.length} otherwise; exit 0 ${Math.round(exitMs)} ms after SIGTERM (graceMs ${GRACE_MS})`);
});

test('SIGTERM with a stream that never finishes: it is cancelled at the end of shutdown.graceMs and the process exits 0', async (t) => {
  const GRACE_MS = 2000;
  const gatehouse = await startGatehouseProcess({ GATEHOUSE_CONFIG: configFile(t, GRACE_MS) });
  t.after(() => { gatehouse.child.kill('SIGKILL'); });
  const [client] = clients(t, gatehouse, 1);
  const stuck = new EnvoyRequest(client!, '/api/stuck', false);
  assert.equal((await stuck.stream.next(ANSWER_WAIT_MS)).response.case, 'requestHeaders');

  const signalledAt = performance.now();
  gatehouse.child.kill('SIGTERM');
  // the upstream never answers: the stream is ended by gatehouse once the grace period is over
  const end = await stuck.stream.ended;
  const endedMs = performance.now() - signalledAt;
  assert.notEqual(end.code, grpc.status.OK, 'cut, not completed');
  assert.equal(await gatehouse.exited, 0);
  const exitMs = performance.now() - signalledAt;
  assert.ok(endedMs >= GRACE_MS - 100, `the stream had its grace period (${Math.round(endedMs)} ms)`);
  assert.ok(exitMs < GRACE_MS + AFTER_DRAIN_MS, `exited ${Math.round(exitMs)} ms after SIGTERM`);
  assert.equal(gatehouse.lines.find((l) => l['msg'] === 'stopped')?.['finished_in_grace'], false);
  t.diagnostic(`SIGTERM with a stuck stream: ended ${grpc.status[end.code]} ${Math.round(endedMs)} ms after SIGTERM (graceMs ${GRACE_MS}); exit 0 after ${Math.round(exitMs)} ms`);
});
