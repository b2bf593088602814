// The Redis connection from config (standalone, Sentinel or Cluster) and the one way stores call it.
// Failing fast is the design: a route's budget is ~100 ms and a store call must answer well inside it.
//  - enableOfflineQueue false: while the connection is down a command fails at once (microseconds)
//    instead of queueing until Redis returns; the filter applies the route's failure mode;
//  - maxRetriesPerRequest 0: a command in flight when the connection drops fails, it is not re-sent;
//  - commandTimeoutMs, kept here (RedisConnection.call), not by ioredis: a Redis that accepts bytes
//    but never answers (frozen, partitioned) costs each call commandTimeoutMs, and socketTimeout then
//    drops the connection, so later calls fail at once again while ioredis reconnects in the
//    background (backoff up to 1 s, forever). The deadline runs from the write and, before it
//    refuses, lets the event loop read what has already arrived (withinDeadline): with ioredis's
//    own timer a saturated gatehouse called a healthy Redis unavailable (bench: 503s on the e2ee
//    route when its device cache expired with 512 streams in flight).
//  - enableAutoPipelining: the commands issued in one tick go out in one socket write. Measured on
//    the signed bench route (bench/signed-routes-bench.ts): a write per nonce claim cost ~37 µs of
//    the server's core (the syscall), and the route served ~9% more streams per second without it.
//    Each command still has its own timeout and its own answer.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisConfig } from './config.js';
import type { KeyLayout } from './keys.js';
import type { StoreMetrics, StoreName, StoreOperation, StoreOutcome } from './metrics.js';
import { storeFailure, type StoreFailure, type StoreStatus } from './types.js';

export type RedisClient = Redis | Cluster;

/** a connection that says nothing for this long after a write is dropped (see above) */
const SOCKET_TIMEOUT_FLOOR_MS = 1_000;
const MAX_RECONNECT_DELAY_MS = 1_000;
/** how long a disable or revocation waits for a replica's copy (an operator's call, not a request's) */
const DURABLE_WRITE_WAIT_MS = 1_000;

export class RedisConfigError extends Error {}

function readPassword(config: RedisConfig, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const source = config.password;
  if (source === undefined) return undefined;
  if ('env' in source) {
    const value = env[source.env];
    if (value === undefined || value === '') throw new RedisConfigError(`stores.redis.passwordEnv: the environment variable ${source.env} is not set`);
    return value;
  }
  try {
    return readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new RedisConfigError(`stores.redis.passwordFile: cannot read ${JSON.stringify(source.file)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function tlsOptions(config: RedisConfig): ConnectionOptions | undefined {
  if (config.tls === undefined) return undefined;
  const { caFile, serverName } = config.tls;
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new RedisConfigError(`stores.redis.tls.caFile: cannot read ${JSON.stringify(caFile)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return { ...(ca === undefined ? {} : { ca }), ...(serverName === undefined ? {} : { servername: serverName }) };
}

/** Builds the ioredis client (not yet connected: see RedisConnection.connect). Throws RedisConfigError for a missing secret. */
export function createRedis(config: RedisConfig, env: Readonly<Record<string, string | undefined>> = process.env): RedisClient {
  const password = readPassword(config, env);
  const tls = tlsOptions(config);
  const connection: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    socketTimeout: Math.max(SOCKET_TIMEOUT_FLOOR_MS, 10 * config.commandTimeoutMs),
    connectTimeout: config.connectTimeoutMs,
    retryStrategy: (times) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls }),
  };
  switch (config.mode) {
    case 'standalone':
      return new Redis({ ...connection, host: config.host, port: config.port, db: config.db });
    case 'sentinel':
      return new Redis({
        ...connection,
        sentinels: config.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: config.masterName,
        db: config.db,
        sentinelRetryStrategy: (times) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
        ...(tls === undefined ? {} : { enableTLSForSentinelMode: true, sentinelTLS: tls }),
      });
    case 'cluster': {
      const { retryStrategy: _perNode, enableOfflineQueue: _offline, lazyConnect: _lazy, ...redisOptions } = connection;
      const options: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
    enableAutoPipelining: true,
        clusterRetryStrategy: (times) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
        slotsRefreshTimeout: config.connectTimeoutMs,
        redisOptions,
      };
      return new Cluster(
        config.nodes.map((n) => ({ host: n.host, port: n.port })),
        options,
      );
    }
  }
}

export type RedisAnswer<T> = { readonly ok: true; readonly value: T } | StoreFailure;

/**
 * `work`, or a rejection when it has not answered within `ms` of being written. Two turns of the
 * event loop make that so on a busy gatehouse:
 *  - the timer starts in the check phase (setImmediate) right after ioredis's auto-pipeline has
 *    written the command in that same phase, not when it was queued: time the command waited for the
 *    write is our loop's, not Redis';
 *  - when the timer fires (timers phase), the refusal waits for the check phase, after the poll phase
 *    that reads an answer already waiting on the socket.
 * ioredis's own commandTimeout did neither: a saturated gatehouse (a poll phase longer than the
 * timeout) called a healthy Redis unavailable.
 */
function withinDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    setImmediate(() => {
      if (settled) return;
      timer = setTimeout(() => {
        setImmediate(() => {
          if (settled) return;
          settled = true;
          reject(new Error(`timed out: no answer within ${ms} ms`));
        });
      }, ms);
    });
    work.then(
      (value) => { if (!settled) { settled = true; clearTimeout(timer); resolve(value); } },
      (error: unknown) => { if (!settled) { settled = true; clearTimeout(timer); reject(error instanceof Error ? error : new Error(String(error))); } },
    );
  });
}

/**
 * Which Redis server, holding which data, answers: its run_id (new at every start) and master_replid
 * (new at every start and every promotion of a replica). Both stay put while the data set is the
 * one it was; a change means writes may be gone: a restart without persistence forgets everything,
 * a promoted replica the writes it had not yet received.
 */
function serverIdentity(info: string): string | undefined {
  const field = (name: string): string | undefined => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  const runId = field('run_id');
  const replId = field('master_replid');
  return runId === undefined || replId === undefined ? undefined : `${runId}/${replId}`;
}

/** One Redis client shared by the stores: connect, call with metrics, status, close. */
export class RedisConnection {
  private lastError: string | undefined;
  private closed = false;
  /** the identity of the server of the current connection, once checked (serverIdentity) */
  private identity: string | undefined;
  /** checked since the connection was last (re)made: until then nonce claims are not answered */
  private identityChecked = false;
  /** when this store last lost (or may have lost) its memory, Unix ms; 0: never seen */
  private memoryLostAtMs = 0;
  private memoryLossKey: string | undefined;

  constructor(
    readonly client: RedisClient,
    readonly mode: RedisConfig['mode'],
    readonly metrics: StoreMetrics,
    private readonly connectTimeoutMs: number,
    /** each call's deadline (withinDeadline); a call may ask for a longer one (an admin scan) */
    private readonly commandTimeoutMs: number,
  ) {
    // ioredis emits 'error' on every failed (re)connect; without a listener Node would throw
    client.on('error', (err: unknown) => {
      this.lastError = err instanceof Error ? err.message : String(err);
    });
    // a server that goes away cleanly emits no error, only close; an error before it says more
    client.on('close', () => {
      if (!this.closed) this.lastError ??= 'connection closed';
      this.identityChecked = false;
    });
    client.on('ready', () => {
      this.lastError = undefined;
      this.identityChecked = false;
      void this.checkIdentity();
    });
  }

  /**
   * The memory-loss epoch the nonce store compares signatures with (Unix ms; 0 never), or undefined
   * while the server of the current connection is not yet checked. Cluster mode is not checked
   * (each master would need its own check): 0.
   */
  memoryLostAt(): number | undefined {
    if (this.mode === 'cluster') return 0;
    return this.identityChecked ? this.memoryLostAtMs : undefined;
  }

  /** the key the epoch is shared under (KeyLayout.memoryLoss); set by the stores that use it */
  shareMemoryLossUnder(keys: KeyLayout): void {
    this.memoryLossKey = keys.memoryLoss();
  }

  private checking: Promise<void> | undefined;

  /**
   * After every (re)connection: INFO tells which server answers. Another one than before (restart,
   * failover) means it may have lost writes: the epoch moves to now and is shared in Redis, so the
   * other replicas and a replica started later learn it too. Runs once at a time; a check that fails
   * is retried on the next connection (claims answer unavailable meanwhile).
   */
  private checkIdentity(): Promise<void> {
    if (this.mode === 'cluster') return Promise.resolve();
    this.checking ??= (async () => {
      try {
        const client = this.client as Redis;
        const identity = serverIdentity(await withinDeadline(client.info(), this.connectTimeoutMs));
        if (identity === undefined) throw new Error('INFO has no run_id or master_replid');
        const key = this.memoryLossKey;
        if (this.identity !== undefined && identity !== this.identity) {
          this.memoryLostAtMs = Math.max(this.memoryLostAtMs, Date.now());
          this.metrics.count('nonces', 'identity', 'changed');
          this.lastError = `the Redis server changed (restart or failover): signatures made before ${new Date(this.memoryLostAtMs).toISOString()} are refused until they expire`;
          if (key !== undefined) await withinDeadline(client.set(key, String(this.memoryLostAtMs)), this.connectTimeoutMs);
        } else if (key !== undefined) {
          const shared = Number(await withinDeadline(client.get(key), this.connectTimeoutMs));
          if (Number.isSafeInteger(shared)) this.memoryLostAtMs = Math.max(this.memoryLostAtMs, shared);
        }
        this.identity = identity;
        this.identityChecked = client.status === 'ready';
      } catch (err) {
        this.lastError = `checking the Redis server's identity: ${err instanceof Error ? err.message : String(err)}`;
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  /**
   * Connects once, within connectTimeoutMs. A Redis that is down at start is not fatal: routes have
   * failure modes, ioredis keeps retrying, and status() reports it. Resolves with the error, if any.
   */
  async connect(): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    // ioredis bounds each attempt; a Cluster whose state is not ok retries inside connect(), so the
    // start is bounded here too
    const gaveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => { reject(new Error(`not ready within ${this.connectTimeoutMs} ms`)); }, this.connectTimeoutMs);
    });
    try {
      await Promise.race([this.client.connect(), gaveUp]);
      // the identity check that 'ready' started: claims wait for it
      await Promise.race([this.checkIdentity(), gaveUp]);
      return undefined;
    } catch (err) {
      // the 'error' event (ECONNREFUSED, ...) says more than connect()'s "Connection is closed."
      this.lastError ??= err instanceof Error ? err.message : String(err);
      return this.lastError;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs one command and answers its value, or `unavailable` with the reason; never throws. The
   * outcome of a success is the caller's to name (first_use, found, ...). `deadlineMs`: the whole
   * call's, commandTimeoutMs unless the caller needs longer (several commands, off the request path).
   */
  async call<T>(store: StoreName, operation: StoreOperation, command: (client: RedisClient) => Promise<T>, outcomeOf: (value: T) => StoreOutcome, deadlineMs = this.commandTimeoutMs): Promise<RedisAnswer<T>> {
    const started = performance.now();
    try {
      if (this.closed) throw new Error('the store is closed');
      const value = await withinDeadline(command(this.client), deadlineMs);
      this.metrics.observe(store, operation, outcomeOf(value), (performance.now() - started) / 1000);
      return { ok: true, value };
    } catch (err) {
      this.metrics.observe(store, operation, 'unavailable', (performance.now() - started) / 1000);
      return storeFailure('unavailable', `redis ${operation}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * After a write that must survive a failover (an account disable, a device revocation): WAIT
   * until a replica has it. Without a replica's copy, a failover can promote a replica that never got
   * the write and the disabled account is enabled again, silently. Required: one replica on a
   * Sentinel master (a Sentinel deployment has replicas), and on a standalone master that has
   * replicas; a standalone Redis without replicas has nothing to fail over to (its persistence is
   * what keeps the write). Cluster mode is not waited for yet (WAIT goes to the key's node).
   * A write not confirmed in time is a failure: the caller is told, and may retry (both writes are
   * idempotent).
   */
  async replicated(store: StoreName, operation: StoreOperation): Promise<RedisAnswer<number>> {
    // counted under operation `replicate`, so the write's own count stays one per write
    if (this.mode === 'cluster') return { ok: true, value: 0 };
    const client = this.client as Redis;
    const replicas = await this.call(store, 'replicate', async (c) => Number(/^connected_slaves:(\d+)/m.exec(await (c as Redis).info('replication'))?.[1] ?? '0'), () => 'ok');
    if (!replicas.ok) return replicas;
    const required = this.mode === 'sentinel' ? 1 : Math.min(1, replicas.value);
    if (required === 0) return { ok: true, value: 0 };
    const waitMs = Math.max(this.commandTimeoutMs, DURABLE_WRITE_WAIT_MS);
    const acked = await this.call(store, 'replicate', () => client.wait(required, waitMs), () => 'ok', waitMs + this.commandTimeoutMs);
    if (!acked.ok) return acked;
    if (acked.value < required) {
      this.metrics.count(store, 'replicate', 'unavailable');
      return storeFailure('unavailable', `redis ${operation}: written on the master but no replica confirmed it within ${waitMs} ms, so a failover could lose it; retry`);
    }
    return acked;
  }

  status(): StoreStatus {
    if (this.closed) return { kind: 'redis', mode: this.mode, state: 'closed' };
    // connected, but the server's identity not yet checked: nonce claims are not answered yet
    const state = this.client.status === 'ready' && this.memoryLostAt() === undefined ? 'checking' : this.client.status;
    // the last error explains a connection that is not ready (it is cleared when ready)
    return { kind: 'redis', mode: this.mode, state, ...(state === 'ready' || this.lastError === undefined ? {} : { lastError: this.lastError }) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      // not connected (or the quit itself failed): drop the socket and stop reconnecting
      this.client.disconnect();
    }
  }
}
