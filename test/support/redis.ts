// A real redis-server for tests: started on a free loopback port in a temporary directory, and able
// to stop and start again on the same port (an outage and its recovery), or to freeze (SIGSTOP: a
// server that accepts bytes and never answers, as behind a network partition).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../bench/target.js';
import { skipUnlessCi } from './requires.js';

export { freePort };

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';

/** `skip` option for tests that need redis-server (CI installs it; see requires.ts). */
export function skipWithoutRedis(): false | string {
  return skipUnlessCi(existsSync(REDIS_SERVER), `${REDIS_SERVER} not installed (Debian: redis-server)`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => { resolve(false); });
  });
}

export interface RedisServerOptions {
  /** cluster-enabled yes, then CLUSTER ADDSLOTSRANGE 0 16383: a one-node cluster owning every slot */
  readonly cluster?: boolean;
  /** cluster-enabled yes and no slots: a member for `redis-cli --cluster create` (TestRedisCluster) */
  readonly clusterMember?: { readonly nodeTimeoutMs: number };
  /**
   * a Sentinel (redis-server --sentinel) monitoring the master on this port under this name, with
   * quorum 1 unless given; downAfterMs and failoverTimeoutMs: Sentinel's defaults (30 s, 3 min) unless given
   */
  readonly sentinelOf?: { readonly port: number; readonly name: string; readonly quorum?: number; readonly downAfterMs?: number; readonly failoverTimeoutMs?: number };
  /** more redis-server arguments, e.g. ['--replicaof', '127.0.0.1', '6379'] */
  readonly args?: readonly string[];
  /** TLS only (no plain port), with these PEM files; clients need not present a certificate */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  /** requirepass */
  readonly password?: string;
}

export class TestRedisServer {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<TestRedisServer> {
    return TestRedisServer.startOn(await freePort(), options);
  }

  /** on a port chosen beforehand (e.g. one a client already dials) */
  static async startOn(port: number, options: RedisServerOptions = {}): Promise<TestRedisServer> {
    const server = new TestRedisServer(port, mkdtempSync(join(tmpdir(), 'gatehouse-redis-')), options);
    await server.startAgain();
    if (options.cluster === true) {
      await server.command('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      await server.waitForClusterOk();
    }
    return server;
  }

  /** the running redis-server's pid (e.g. to pin it to a core), undefined while stopped */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** starts redis-server on this server's port (after stop()); resolves once it accepts connections */
  async startAgain(): Promise<void> {
    if (this.child !== undefined) throw new Error('redis-server is already running');
    let args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
    const sentinel = this.options.sentinelOf;
    if (sentinel !== undefined) {
      // Sentinel rewrites its config file, so it needs one of its own
      const file = join(this.dir, 'sentinel.conf');
      const timing = [
        ...(sentinel.downAfterMs === undefined ? [] : [`sentinel down-after-milliseconds ${sentinel.name} ${sentinel.downAfterMs}`]),
        ...(sentinel.failoverTimeoutMs === undefined ? [] : [`sentinel failover-timeout ${sentinel.name} ${sentinel.failoverTimeoutMs}`]),
      ];
      writeFileSync(file, [`port ${this.port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${this.dir}`, `sentinel monitor ${sentinel.name} 127.0.0.1 ${sentinel.port} ${sentinel.quorum ?? 1}`, ...timing, ''].join('\n'));
      args = [file, '--sentinel'];
    }
    const tls = this.options.tls;
    if (tls !== undefined) {
      args = [...args.slice(2), '--port', '0', '--tls-port', String(this.port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no'];
    }
    if (this.options.password !== undefined) args.push('--requirepass', this.options.password);
    if (this.options.cluster === true) args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-announce-ip', '127.0.0.1');
    const member = this.options.clusterMember;
    // replica-validity-factor 0: a replica may be promoted however long ago it last heard its master
    if (member !== undefined) args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-announce-ip', '127.0.0.1', '--cluster-node-timeout', String(member.nodeTimeoutMs), '--cluster-replica-validity-factor', '0');
    if (this.options.args !== undefined) args.push(...this.options.args);
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => { this.output += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on ${this.port}:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // a restarted node reads its slots back from nodes.conf; a fresh one gets them from start()
    if (this.options.cluster === true && existsSync(join(this.dir, 'nodes.conf')) && (await this.command('CLUSTER', 'INFO')).includes('cluster_slots_assigned:16384')) await this.waitForClusterOk();
  }

  private async waitForClusterOk(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const info = await this.command('CLUSTER', 'INFO').catch(() => '');
      if (info.includes('cluster_state:ok')) return;
      if (Date.now() > deadline) throw new Error(`redis cluster not ok:\n${info}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** kills redis-server (SIGKILL: no goodbye to clients, as a crash) and waits for it to exit */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: connections stay open and nothing is answered */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  /** one command over a fresh connection (RESP inline), for setup and checks outside the code under test */
  command(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      let reply = '';
      const encoded = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
      socket.once('connect', () => { socket.end(encoded); });
      socket.on('data', (d: Buffer) => { reply += d.toString(); });
      socket.once('error', reject);
      socket.once('close', () => { resolve(reply); });
    });
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A node of a TestRedisCluster as CLUSTER NODES lists it */
export interface ClusterNodeView {
  readonly server: TestRedisServer;
  readonly id: string;
  readonly role: 'master' | 'replica';
  /** a replica's master id */
  readonly masterId?: string;
  readonly failed: boolean;
}

/**
 * A Redis Cluster on loopback made by `redis-cli --cluster create`: `masters` masters with
 * `replicasPerMaster` replicas each, every node a TestRedisServer (so it can be killed or frozen).
 */
export class TestRedisCluster {
  private constructor(readonly servers: readonly TestRedisServer[]) {}

  static async start(options: { readonly masters: number; readonly replicasPerMaster: number; readonly nodeTimeoutMs: number }): Promise<TestRedisCluster> {
    const servers: TestRedisServer[] = [];
    try {
      for (let i = 0; i < options.masters * (1 + options.replicasPerMaster); i++) servers.push(await TestRedisServer.start({ clusterMember: { nodeTimeoutMs: options.nodeTimeoutMs } }));
      const cluster = new TestRedisCluster(servers);
      await promisify(execFile)(REDIS_CLI, ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(options.replicasPerMaster), '--cluster-yes'], { timeout: 60_000 });
      await cluster.waitUntilOk(servers, 30_000);
      // the replicas attached and in sync, and every node told so by gossip
      const deadline = Date.now() + 30_000;
      for (;;) {
        const views = await Promise.all(servers.map((s) => cluster.nodes(s)));
        const links = await Promise.all(servers.map((s) => s.command('INFO', 'replication')));
        const replicas = options.masters * options.replicasPerMaster;
        if (views.every((v) => v.filter((n) => n.masterId !== undefined && !n.failed).length === replicas) && links.filter((l) => l.includes('master_link_status:up')).length === replicas) break;
        if (Date.now() > deadline) throw new Error(`redis cluster replicas not attached:\n${views.map((v) => JSON.stringify(v.map((n) => [n.server.port, n.role, n.masterId]))).join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return cluster;
    } catch (err) {
      await Promise.all(servers.map((s) => s.close()));
      throw err;
    }
  }

  /** every listed server answers cluster_state:ok and sees all masters with slots, none failed */
  async waitUntilOk(servers: readonly TestRedisServer[], ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const infos = await Promise.all(servers.map((s) => s.command('CLUSTER', 'INFO').catch(() => '')));
      if (infos.every((info) => info.includes('cluster_state:ok'))) return;
      if (Date.now() > deadline) throw new Error(`redis cluster not ok:\n${infos.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** CLUSTER NODES as seen by `from` */
  async nodes(from: TestRedisServer): Promise<ClusterNodeView[]> {
    const text = await from.command('CLUSTER', 'NODES');
    const views: ClusterNodeView[] = [];
    for (const line of text.split('\n')) {
      const [id, address, flags, masterId] = line.trim().split(' ');
      const port = Number(/:(\d+)@/.exec(address ?? '')?.[1]);
      const server = this.servers.find((s) => s.port === port);
      if (id === undefined || flags === undefined || server === undefined) continue;
      views.push({ server, id, role: flags.includes('master') ? 'master' : 'replica', ...(masterId !== undefined && masterId !== '-' ? { masterId } : {}), failed: flags.includes('fail') });
    }
    return views;
  }

  /** the master serving `key`'s slot and its replicas, as `from` sees them */
  async ownerOf(key: string, from: TestRedisServer): Promise<{ master: ClusterNodeView; replicas: ClusterNodeView[] }> {
    const slot = Number(/^:(\d+)/.exec(await from.command('CLUSTER', 'KEYSLOT', key))?.[1]);
    const shards = await from.command('CLUSTER', 'SLOTS');
    const views = await this.nodes(from);
    // CLUSTER SLOTS in RESP: find the range holding the slot, then its first port (the master)
    const ranges = [...shards.matchAll(/\*\d+\r\n:(\d+)\r\n:(\d+)\r\n\*\d+\r\n\$[\d]+\r\n[^\r]+\r\n:(\d+)\r\n/g)];
    const range = ranges.find((m) => Number(m[1]) <= slot && slot <= Number(m[2]));
    const master = views.find((v) => v.server.port === Number(range?.[3]) && v.role === 'master');
    if (master === undefined) throw new Error(`no master serves slot ${slot}:\n${shards}`);
    return { master, replicas: views.filter((v) => v.masterId === master.id) };
  }

  /** one command about `key` on the node that serves it (following a MOVED from `from`) */
  async commandFor(key: string, from: TestRedisServer, ...args: string[]): Promise<string> {
    const reply = await from.command(...args);
    const moved = /^-MOVED \d+ [^:]+:(\d+)/.exec(reply);
    const target = moved === null ? undefined : this.servers.find((s) => s.port === Number(moved[1]));
    return target === undefined ? reply : target.command(...args);
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.close()));
  }
}
