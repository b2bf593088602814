// gatehouse in a child process of its own, started on a config file, that measures itself when the
// test asks (IPC): memory after forced garbage collections, and the handles and timers the event
// loop holds. Tests of memory and handles need it in its own process: the test's clients would
// otherwise be counted with it. Run as
//   node --expose-gc --import tsx test/support/measured-gatehouse.ts <config file>
// or started with startMeasuredGatehouse().
import { createHook } from 'node:async_hooks';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from './config.js';
import { TEST_REGISTRY } from './test-filters.js';
import { startGatehouse } from '../../src/gatehouse.js';
import { PROCESS_WAIT_MS } from './process.js';

export interface Measurement {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  /** the heap V8 holds from the system (used or not), MiB */
  readonly heapTotalMiB: number;
  /** memory outside V8's heap (Buffers and the like), MiB */
  readonly externalMiB: number;
  /**
   * async resources alive, by type (Timeout, HTTP2STREAM, TCPWRAP, ...; promises left out): created
   * and not yet destroyed. Unlike process.getActiveResourcesInfo() this counts unref'd timers too,
   * such as a stream's idle timer.
   */
  readonly resources: Readonly<Record<string, number>>;
  /** gatehouse_streams_in_flight, both protocols */
  readonly inFlight: number;
}

type Request = { readonly kind: 'measure' } | { readonly kind: 'stop' };
type Reply = { readonly kind: 'ready'; readonly grpcPort: number; readonly adminPort: number } | { readonly kind: 'measured'; readonly measurement: Measurement };

export interface MeasuredGatehouse {
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly child: ChildProcess;
  /** collects garbage until the heap stops shrinking, then measures */
  measure(): Promise<Measurement>;
  stop(): Promise<void>;
}

const MiB = 2 ** 20;

/** async resources alive, by id; enabled before gatehouse starts so that every one of its resources is seen */
function trackResources(): () => Record<string, number> {
  const alive = new Map<number, string>();
  createHook({
    init(id, type) { if (type !== 'PROMISE') alive.set(id, type); },
    destroy(id) { alive.delete(id); },
  }).enable();
  return () => {
    const byType: Record<string, number> = {};
    for (const type of alive.values()) byType[type] = (byType[type] ?? 0) + 1;
    return byType;
  };
}

async function serve(configFile: string): Promise<void> {
  const resourcesAlive = trackResources();
  const parsed = parseConfig(readFileSync(configFile, 'utf8'), configFile, { registry: TEST_REGISTRY });
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  const gatehouse = await startGatehouse({ config: parsed.config, registry: TEST_REGISTRY, logDestination: { write: () => undefined } });
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const send = (reply: Reply): void => { process.send?.(reply); };
  process.on('message', (message: Request) => {
    if (message.kind === 'stop') {
      void gatehouse.stop(1000).finally(() => process.exit(0));
      return;
    }
    void (async () => {
      // a full collection frees what the last one only unlinked (weak references, finalizers): repeat until stable
      let last = Number.POSITIVE_INFINITY;
      for (let round = 0; round < 10; round++) {
        gc();
        await new Promise((r) => setImmediate(r));
        const used = process.memoryUsage().heapUsed;
        if (used >= last * 0.99) break;
        last = used;
      }
      const memory = process.memoryUsage();
      const resources = resourcesAlive();
      const inFlight = (await gatehouse.telemetry.metrics.registry.getSingleMetric('gatehouse_streams_in_flight')?.get())?.values.reduce((sum, v) => sum + v.value, 0) ?? Number.NaN;
      send({ kind: 'measured', measurement: { rssMiB: memory.rss / MiB, heapUsedMiB: memory.heapUsed / MiB, heapTotalMiB: memory.heapTotal / MiB, externalMiB: memory.external / MiB, resources, inFlight } });
    })();
  });
  // the parent went away without saying stop: do not outlive it
  process.on('disconnect', () => { process.exit(0); });
  send({ kind: 'ready', grpcPort: gatehouse.grpcPort, adminPort: gatehouse.adminPort });
}

/** Starts the child on `configFile`; it is killed when the test ends, whatever happens. */
export async function startMeasuredGatehouse(t: { after: (fn: () => unknown) => void }, configFile: string): Promise<MeasuredGatehouse> {
  const child = fork(join(import.meta.dirname, 'measured-gatehouse.ts'), [configFile], { execArgv: ['--expose-gc', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const replies: Reply[] = [];
  const waiting: (() => void)[] = [];
  child.on('message', (reply: Reply) => {
    replies.push(reply);
    for (const wake of waiting.splice(0)) wake();
  });
  const next = async <K extends Reply['kind']>(kind: K): Promise<Extract<Reply, { kind: K }>> => {
    const deadline = Date.now() + PROCESS_WAIT_MS;
    for (;;) {
      const at = replies.findIndex((r) => r.kind === kind);
      if (at >= 0) return replies.splice(at, 1)[0] as Extract<Reply, { kind: K }>;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the measured gatehouse did not answer ${kind} (exit code ${String(child.exitCode)})`);
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  const ready = await next('ready');
  return {
    grpcPort: ready.grpcPort,
    adminPort: ready.adminPort,
    child,
    async measure() {
      child.send({ kind: 'measure' } satisfies Request);
      return (await next('measured')).measurement;
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.send({ kind: 'stop' } satisfies Request);
      await exited;
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '') && process.send !== undefined) {
  const configFile = process.argv[2];
  if (configFile === undefined) throw new Error('usage: measured-gatehouse.ts <config file>');
  await serve(configFile);
}
