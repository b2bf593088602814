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
//  - Sentinel: failoverDetector. Without it ioredis stays on the demoted master until Sentinel
//    reconfigures it and kills its clients, ~10 s after the promotion (SENTINEL_PUBLISH_PERIOD × 4
//    plus INFO periods): every write in between is lost at the resync. With it, the +switch-master
//    message on any sentinel drops the connection and ioredis asks the sentinels again.
//  - Cluster: retryDelayOnFailover 0 (a command whose connection closed is failed, not re-sent:
//    it may have run, and a nonce claim re-sent would answer "replayed"); the slot table refreshed
//    every few seconds, so a promoted replica or a new master is checked (memory-loss epoch) even
//    when no redirect points at it.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Command, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
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
/** how many replaced server identities are remembered (one per restart or failover seen) */
const MAX_SUPERSEDED_IDENTITIES = 16;
/** Cluster: how often the slot table (and with it each master's identity) is read again */
const CLUSTER_SLOTS_REFRESH_MS = 5_000;

/** a node's address as ioredis keys its Cluster slot table (`host:port`) */
function nodeAddress(node: Redis): string {
  return `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`;
}

/** the Cluster hash slot of a key (hash tag included), as ioredis routes it */
function slotOf(key: string): number {
  return new Command('exists', [key]).getSlot();
}

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
        failoverDetector: true,
        sentinelReconnectStrategy: (times) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
        ...(tls === undefined ? {} : { enableTLSForSentinelMode: true, sentinelTLS: tls }),
      });
    case 'cluster': {
      const { retryStrategy: _perNode, enableOfflineQueue: _offline, lazyConnect: _lazy, ...redisOptions } = connection;
      const options: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (times) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
        retryDelayOnFailover: 0,
        slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
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

const roleOf = (info: string): string | undefined => /^role:(\S+)/m.exec(info)?.[1];

/** One Redis client shared by the stores: connect, call with metrics, status, close. */
export class RedisConnection {
  private lastError: string | undefined;
  private closed = false;
  /** the identity of the server of the current connection, once checked (serverIdentity) */
  private identity: string | undefined;
  /** identities this connection saw replaced by another, latest last (bounded) */
  private superseded: readonly string[] = [];
  /**
   * checked since the connection was last (re)made (Cluster: checked once since the client
   * connected; each master has its own check, checkedMasters): until then nonce claims are not answered
   */
  private identityChecked = false;
  /** Cluster: each master's identity when last checked, by address (host:port); kept across reconnections, to compare */
  private readonly masterIdentities = new Map<string, string>();
  /** Cluster: a check has had every master's answer; from then on a master at a new address is a change */
  private allMastersKnown = false;
  /** Cluster: the masters checked since their connection was made; a claim another answered is not trusted */
  private readonly checkedMasters = new Set<string>();
  /** when this store last lost (or may have lost) its memory, Unix ms; 0: never seen */
  private memoryLostAtMs = 0;
  private memoryLossKey: string | undefined;
  private checking: Promise<void> | undefined;
  /** the pass of `checking` under way (a Cluster's topology events may ask for pass after pass) */
  private pass: Promise<void> | undefined;
  /** a check was asked for while one ran: it runs again once done (the topology may have moved meanwhile) */
  private checkAgain = false;

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
    if (client instanceof Cluster) {
      // a node's connection made or lost (a restart, a failover): what it answers is not trusted
      // until it is checked again
      const recheck = (node: Redis): void => {
        this.checkedMasters.delete(nodeAddress(node));
        void this.checkIdentity();
      };
      client.on('+node', recheck);
      client.on('-node', recheck);
      // after every read of the slot table (a redirect, the periodic refresh): a replica promoted
      // to master is found here
      client.on('refresh', () => { void this.checkIdentity(); });
      // a node that cannot be reached (killed, partitioned): read the slot table now rather than at
      // the next periodic refresh, so the replica promoted in its place is found and checked (the
      // commands failed at once are not re-sent: retryDelayOnFailover 0)
      client.on('node error', () => { client.refreshSlotsCache(); });
    }
  }

  /**
   * The memory-loss epoch the nonce store compares signatures with (Unix ms; 0 never), or undefined
   * while the server of the current connection (Cluster: the masters, once) is not yet checked.
   */
  memoryLostAt(): number | undefined {
    return this.identityChecked ? this.memoryLostAtMs : undefined;
  }

  /**
   * Whether a command on `key` that has just answered was answered by a server whose identity is
   * checked: the connection may have moved to another server while it ran (a failover), and in a
   * Cluster ioredis follows a MOVED redirect to a promoted replica before any check has seen it.
   * An answer from an unchecked server may come from a copy that lost writes: not to be trusted.
   */
  answeredByCheckedServer(key: string): boolean {
    if (!this.identityChecked) return false;
    if (!(this.client instanceof Cluster)) return true;
    const owner = this.client.slots[slotOf(key)]?.[0];
    return owner !== undefined && this.checkedMasters.has(owner);
  }

  /** the key the epoch is shared under (KeyLayout.memoryLoss); set by the stores that use it */
  shareMemoryLossUnder(keys: KeyLayout): void {
    this.memoryLossKey = keys.memoryLoss();
  }

  /**
   * After every (re)connection (Cluster: every node connection made or lost and every slot-table
   * read): INFO tells which server answers. Another one than before (restart, failover; in a Cluster
   * also a master at an address that was not one) means it may have lost writes: the epoch moves to
   * now and is shared in Redis, so the other replicas and a replica started later learn it too. One
   * check at a time; one asked for meanwhile runs after it. A check that fails is retried on the
   * next connection (claims answer unavailable meanwhile).
   */
  private checkIdentity(): Promise<void> {
    if (this.checking !== undefined) {
      this.checkAgain = true;
      return this.checking;
    }
    this.checking = (async () => {
      try {
        do {
          this.checkAgain = false;
          this.pass = this.client instanceof Cluster ? this.checkMasters(this.client) : this.checkServer(this.client);
          await this.pass;
        } while (this.recheckWanted());
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  /** read through a method: the flag changes while a check awaits */
  private recheckWanted(): boolean {
    return this.checkAgain && !this.closed;
  }

  private async checkServer(client: Redis): Promise<void> {
    try {
      const identity = serverIdentity(await withinDeadline(client.info(), this.connectTimeoutMs));
      if (identity === undefined) throw new Error('INFO has no run_id or master_replid');
      if (this.superseded.includes(identity)) {
        // a server this connection already saw replaced: a demoted master Sentinel has not yet
        // reconfigured (it takes ~10 s and keeps taking writes until then, which its resync deletes),
        // reached through a sentinel that has not yet heard of the failover. Not used: ask again.
        this.lastError = 'connected to a Redis master that a failover has replaced (not yet demoted); asking the sentinels again';
        this.client.disconnect(true);
        return;
      }
      if (this.identity !== undefined && identity !== this.identity) {
        // a promotion gives the promoted server a new master_replid: the old identity never comes back legitimately
        this.superseded = [...this.superseded.slice(1 - MAX_SUPERSEDED_IDENTITIES), this.identity];
        await this.lostMemory();
      } else {
        await this.learnSharedLoss();
      }
      this.identity = identity;
      this.identityChecked = client.status === 'ready';
    } catch (err) {
      this.lastError = `checking the Redis server's identity: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /**
   * Cluster: each master by its own INFO. A master whose identity changed, or an address that was
   * not a master at the last check (a promoted replica, or a node given slots), may hold less than
   * the writes made to those slots. Masters that do not answer stay unchecked (their claims are
   * not trusted); the others are.
   */
  private async checkMasters(cluster: Cluster): Promise<void> {
    try {
      const answers = await Promise.all(cluster.nodes('master').map(async (node) => {
        try {
          const info = await withinDeadline(node.info(), this.connectTimeoutMs);
          return { address: nodeAddress(node), identity: serverIdentity(info), master: roleOf(info) === 'master' && node.status === 'ready' };
        } catch {
          return undefined;
        }
      }));
      let changed = false;
      const checked: string[] = [];
      for (const answer of answers) {
        if (answer?.identity === undefined || !answer.master) continue;
        const before = this.masterIdentities.get(answer.address);
        if (before !== answer.identity && (before !== undefined || this.allMastersKnown)) changed = true;
        this.masterIdentities.set(answer.address, answer.identity);
        checked.push(answer.address);
      }
      // the loss is this replica's to act on at once; sharing it is best effort here (the key's
      // slot may be on the master that just failed), and the other replicas see the change themselves
      if (changed) await this.lostMemory().catch((err: unknown) => { this.lastError = `sharing the memory-loss time: ${err instanceof Error ? err.message : String(err)}`; });
      else if (!this.identityChecked) await this.learnSharedLoss();
      // a new master counts as a change only once every master serving slots has answered a check:
      // before, one that ioredis had not yet heard of (the slot table is read after the first
      // connection) would look new
      const serving = new Set<string>();
      for (const owners of cluster.slots) if (owners[0] !== undefined) serving.add(owners[0]);
      if (serving.size > 0 && [...serving].every((address) => checked.includes(address))) this.allMastersKnown = true;
      for (const address of checked) this.checkedMasters.add(address);
      if (checked.length > 0) this.identityChecked = cluster.status === 'ready';
    } catch (err) {
      this.lastError = `checking the Redis masters' identities: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /** the data may be an older or empty copy: signatures made before now are refused (nonce store), and the others told */
  private async lostMemory(): Promise<void> {
    this.memoryLostAtMs = Math.max(this.memoryLostAtMs, Date.now());
    this.metrics.count('nonces', 'identity', 'changed');
    this.lastError = `the Redis server changed (restart or failover): signatures made before ${new Date(this.memoryLostAtMs).toISOString()} are refused until they expire`;
    const key = this.memoryLossKey;
    if (key !== undefined) await withinDeadline(this.client.set(key, String(this.memoryLostAtMs)), this.connectTimeoutMs);
  }

  /** a loss another replica saw (or one this replica saw before it restarted) */
  private async learnSharedLoss(): Promise<void> {
    const key = this.memoryLossKey;
    if (key === undefined) return;
    const shared = Number(await withinDeadline(this.client.get(key), this.connectTimeoutMs));
    if (Number.isSafeInteger(shared)) this.memoryLostAtMs = Math.max(this.memoryLostAtMs, shared);
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
      // the identity check that 'ready' started (its pass under way, not the passes topology
      // events may keep asking for): claims wait for it
      await Promise.race([this.checking === undefined ? this.checkIdentity() : this.pass, gaveUp]);
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
   * A write that must survive a failover (an account disable, a device revocation): `write` on the
   * server that owns `key` (the master; in a Cluster the master of the key's slot), then WAIT there
   * until a replica has it. Without a replica's copy, a failover can promote a replica that never got
   * the write and the disabled account is enabled again, silently. Required: one replica on a
   * Sentinel master (a Sentinel deployment has replicas), on a standalone master that has replicas,
   * and on every Cluster master once any master has reported a replica (a replica that failed or
   * fell behind drops out, and that is when the write must not be confirmed); a master
   * without replicas has nothing to fail over to (its persistence is what keeps the write).
   * WAIT counts the replicas that have what *this connection* wrote: the write and the WAIT must go
   * over one connection, so a connection that closed between them (ioredis moved to the new master)
   * is a failure too: WAIT on the new one would confirm a write the old master took with it.
   * A write not confirmed in time is a failure: the caller is told, and may retry (both writes are
   * idempotent).
   */
  async writeDurably<T>(store: StoreName, operation: StoreOperation, key: string, write: (server: Redis) => Promise<T>, outcomeOf: (value: T) => StoreOutcome): Promise<RedisAnswer<T>> {
    const client = await this.durableConnection();
    if (!client.ok) {
      this.metrics.count(store, operation, 'unavailable');
      return storeFailure('unavailable', `redis ${operation}: ${client.detail}`);
    }
    // counted under operation `replicate`, so the write's own count stays one per write
    const target = await this.replicatedServerOf(client.value, store, key);
    if (!target.ok) return target;
    const { server, required } = target.value;
    const connection = { closed: false };
    const onClose = (): void => { connection.closed = true; };
    server.once('close', onClose);
    try {
      const written = await this.call(store, operation, () => write(server), outcomeOf);
      if (!written.ok) {
        // a Cluster slot that moved: read the table again, so the caller's retry goes to the owner
        if (client.value instanceof Cluster && /\b(MOVED|ASK)\b/.test(written.detail)) client.value.refreshSlotsCache();
        return written;
      }
      if (required === 0) return written;
      const waitMs = Math.max(this.commandTimeoutMs, DURABLE_WRITE_WAIT_MS);
      const acked = await this.call(store, 'replicate', () => server.wait(required, waitMs), () => 'ok', waitMs + this.commandTimeoutMs);
      if (!acked.ok) return acked;
      if (connection.closed || acked.value < required) {
        this.metrics.count(store, 'replicate', 'unavailable');
        const why = connection.closed ? 'the connection to the master changed before a replica confirmed it' : `no replica confirmed it within ${waitMs} ms`;
        return storeFailure('unavailable', `redis ${operation}: written on the master but ${why}, so a failover could lose it; retry`);
      }
      return written;
    } finally {
      server.off('close', onClose);
    }
  }

  private durable: Promise<RedisClient> | undefined;
  /** Cluster: a master has been seen with a replica; from then on every durable write waits for one */
  private clusterHasReplicas = false;

  /**
   * The connection durable writes and their WAIT go over, its own: WAIT holds up its connection
   * until a replica answers or the wait ends (1 s), and every command queued behind it on a shared
   * connection would wait too. During a failover, when the new master has no replica yet, disables
   * on the request path's connection stalled its nonce claims for their whole deadline. Made on the
   * first durable write (most replicas never make one), connected once; ioredis keeps it connected.
   */
  private async durableConnection(): Promise<RedisAnswer<RedisClient>> {
    if (this.closed) return storeFailure('unavailable', 'the store is closed');
    this.durable ??= (async () => {
      const client = this.client.duplicate();
      // its failures reach the caller as answers; the main connection's status is the one reported
      client.on('error', () => undefined);
      await withinDeadline(client.connect(), this.connectTimeoutMs).catch(() => undefined);
      return client;
    })();
    const client = await this.durable;
    return client.status === 'ready' ? { ok: true, value: client } : storeFailure('unavailable', `the connection for durable writes is ${client.status}`);
  }

  /** the server (of the durable connection) a durable write of `key` goes to, and how many replicas must confirm it */
  private async replicatedServerOf(client: RedisClient, store: StoreName, key: string): Promise<RedisAnswer<{ server: Redis; required: number }>> {
    if (client instanceof Cluster) {
      const owners = client.slots[slotOf(key)];
      const server = owners === undefined ? undefined : client.nodes('master').find((node) => nodeAddress(node) === owners[0]);
      if (owners === undefined || server === undefined) {
        this.metrics.count(store, 'replicate', 'unavailable');
        client.refreshSlotsCache();
        return storeFailure('unavailable', `redis ${store}: no known master serves the slot of ${JSON.stringify(key)} (the slot table is being read again); retry`);
      }
      // sticky: a replica that dropped out (failed, lagging, its link cut) is the very case where a
      // write the master alone took would be lost by a failover. Asked of the master itself until a
      // replica has been seen: ioredis's slot table did not list the replicas here (Redis 7.0)
      if (!this.clusterHasReplicas) {
        const replicas = await this.call(store, 'replicate', async () => Number(/^connected_slaves:(\d+)/m.exec(await server.info('replication'))?.[1] ?? '0'), () => 'ok');
        if (!replicas.ok) return replicas;
        if (owners.length > 1 || replicas.value > 0) this.clusterHasReplicas = true;
      }
      return { ok: true, value: { server, required: this.clusterHasReplicas ? 1 : 0 } };
    }
    if (this.mode === 'sentinel') return { ok: true, value: { server: client, required: 1 } };
    const replicas = await this.call(store, 'replicate', async () => Number(/^connected_slaves:(\d+)/m.exec(await client.info('replication'))?.[1] ?? '0'), () => 'ok');
    return replicas.ok ? { ok: true, value: { server: client, required: Math.min(1, replicas.value) } } : replicas;
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
      // not connected (or the quit itself failed): the disconnect below drops the socket
    }
    // stops reconnecting, and (Sentinel) the failover detector's subscriptions, which QUIT leaves
    // running: they would reconnect to the sentinels forever and keep the process alive
    this.client.disconnect();
    if (this.durable !== undefined) (await this.durable).disconnect();
  }
}
