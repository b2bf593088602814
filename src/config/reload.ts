// Hot reload. The watcher watches the config file's directory (and, when the file is a symlink, its
// target's directory): editors replace files by rename, and Kubernetes swaps a ConfigMap by renaming
// a `..data` symlink, neither of which a watch on the file itself survives. Events are debounced and
// the content hashed, so only a real change is parsed. A slow poll backs fs.watch up (network file
// systems, a symlink target edited in place elsewhere).
//
// A valid new config yields a new RouteTable; an invalid one is refused and the old one stays.
// Tables are immutable: a stream takes `watcher.current` when it starts and keeps that table to its
// end, so a reload never changes the chain under a request in flight. Listen addresses, TLS,
// telemetry and stores settings cannot change in a running process: a change to them is reported as
// "requires restart" and the running values are kept, while the routes are applied.
import { readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { FILTER_REGISTRY } from '../filters/registry.js';
import type { FilterDefinition, FilterDeps } from '../pipeline/types.js';
import { configError, type ConfigError } from './errors.js';
import { applyEnv, checkFiles, contentHash, deepFreeze, parseConfig } from './load.js';
import { buildRouteTable, type RouteTable } from './routes.js';
import type { GatehouseConfig } from './schema.js';

export interface ConfigSnapshot {
  readonly config: GatehouseConfig;
  readonly table: RouteTable;
}

export interface ReloadInfo {
  /** non-fatal findings in the new file (e.g. a route that can never match) */
  readonly warnings: readonly ConfigError[];
  /** changed settings that were NOT applied and need a restart, one line each */
  readonly restartRequired: readonly string[];
}

export interface ConfigWatcherOptions {
  readonly file: string;
  /** what is running now (from loadConfig + compileRouteTable at start) */
  readonly initial: ConfigSnapshot;
  /** `hash` from loadConfig: the content `initial` came from. Without it the file is read (synchronously) now */
  readonly initialHash?: string;
  readonly deps: FilterDeps;
  readonly registry?: ReadonlyMap<string, FilterDefinition>;
  /** the env overrides to re-apply on each reload; default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** quiet time after the last fs event before the file is read; default 100 ms */
  readonly debounceMs?: number;
  /** re-read the file this often even without events; 0 disables; default 5000 ms */
  readonly pollMs?: number;
  readonly onReload?: (table: RouteTable, config: GatehouseConfig, info: ReloadInfo) => void;
  readonly onRejected?: (errors: readonly ConfigError[]) => void;
  /** the watcher itself failed (a directory watch broke); polling carries on */
  readonly onError?: (error: unknown) => void;
}

export type CheckOutcome = 'unchanged' | 'reloaded' | 'rejected' | 'closed';

function describeRestartChanges(running: GatehouseConfig, next: GatehouseConfig): string[] {
  const out: string[] = [];
  const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
  if (running.listen.grpc.address !== next.listen.grpc.address) out.push(`listen.grpc changed (${running.listen.grpc.address} → ${next.listen.grpc.address}): requires a restart`);
  if (running.listen.admin.address !== next.listen.admin.address) out.push(`listen.admin changed (${running.listen.admin.address} → ${next.listen.admin.address}): requires a restart`);
  if (JSON.stringify(running.tls) !== JSON.stringify(next.tls)) out.push(`tls changed (${show(running.tls)} → ${show(next.tls)}): requires a restart`);
  for (const key of ['logLevel', 'serviceName', 'otlpEndpoint', 'accessLog'] as const) {
    if (running.telemetry[key] !== next.telemetry[key]) out.push(`telemetry.${key} changed (${show(running.telemetry[key])} → ${show(next.telemetry[key])}): requires a restart`);
  }
  // the stores are connections and caches built at start; the password is a reference, never a value
  if (JSON.stringify(running.stores) !== JSON.stringify(next.stores)) out.push(`stores changed (${show(running.stores)} → ${show(next.stores)}): requires a restart`);
  return out;
}

export class ConfigWatcher {
  private snapshot: ConfigSnapshot;
  private readonly file: string;
  private readonly options: ConfigWatcherOptions;
  private readonly watchers = new Map<string, FSWatcher>();
  private debounceTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** hash (or read-error code) of the last content looked at, so one change is reported once */
  private lastSeen: string | undefined;
  private runningHash: string | undefined;
  private checking: Promise<CheckOutcome> | undefined;
  private again = false;
  private closed = false;

  constructor(options: ConfigWatcherOptions) {
    this.options = options;
    this.file = resolve(options.file);
    this.snapshot = options.initial;
    this.watchDir(dirname(this.file));
    this.refreshTargetWatch();
    // the content the running config came from: a change made after loading but before this watcher
    // started is still a change, while an event for the same content is not
    if (options.initialHash !== undefined && options.initialHash !== '') this.runningHash = options.initialHash;
    else {
      try {
        this.runningHash = contentHash(readFileSync(this.file, 'utf8'));
      } catch {
        this.runningHash = undefined;
      }
    }
    this.lastSeen = this.runningHash;
    const pollMs = options.pollMs ?? 5000;
    if (pollMs > 0) {
      this.pollTimer = setInterval(() => void this.check(), pollMs);
      this.pollTimer.unref();
    }
  }

  /** what new streams should use; a stream keeps the snapshot it started with */
  get current(): ConfigSnapshot {
    return this.snapshot;
  }

  /** Read the file now (e.g. on SIGHUP or from an admin endpoint); resolves once it is handled. */
  async check(): Promise<CheckOutcome> {
    if (this.closed) return 'closed';
    if (this.checking) {
      this.again = true;
      return this.checking;
    }
    this.checking = this.safeCheck();
    try {
      let outcome = await this.checking;
      while (this.again && !this.isClosed()) {
        this.again = false;
        this.checking = this.safeCheck();
        outcome = await this.checking;
      }
      return outcome;
    } finally {
      this.checking = undefined;
    }
  }

  close(): void {
    this.closed = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** a method, not the field, so checks after an await are not narrowed away */
  private isClosed(): boolean {
    return this.closed;
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.check();
    }, this.options.debounceMs ?? 100);
    this.debounceTimer.unref();
  }

  private watchDir(dir: string): void {
    if (this.closed || this.watchers.has(dir)) return;
    try {
      const w = watch(dir, { persistent: false }, () => {
        this.schedule();
      });
      w.on('error', (err) => {
        w.close();
        this.watchers.delete(dir);
        this.report('onError', err);
      });
      this.watchers.set(dir, w);
    } catch (err) {
      this.report('onError', err);
    }
  }

  /** when the file is a symlink into another directory, watch that one too (and drop stale ones) */
  private refreshTargetWatch(): void {
    const own = dirname(this.file);
    let target: string | undefined;
    try {
      target = dirname(realpathSync(this.file));
    } catch {
      target = undefined;
    }
    if (this.closed) return;
    for (const [dir, w] of this.watchers) {
      if (dir !== own && dir !== target) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    if (target !== undefined && target !== own) this.watchDir(target);
  }

  private report<K extends 'onRejected' | 'onError'>(which: K, arg: K extends 'onRejected' ? readonly ConfigError[] : unknown): void {
    try {
      if (which === 'onRejected') this.options.onRejected?.(arg as readonly ConfigError[]);
      else this.options.onError?.(arg);
    } catch {
      // a throwing callback must not stop the watcher
    }
  }

  /** checks run from timers and fs events: an unexpected throw must not become an unhandled rejection */
  private async safeCheck(): Promise<CheckOutcome> {
    try {
      return await this.runCheck();
    } catch (err) {
      this.report('onError', err);
      return 'rejected';
    }
  }

  private async runCheck(): Promise<CheckOutcome> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (this.closed || this.lastSeen === `unreadable:${code}`) return 'unchanged';
      this.lastSeen = `unreadable:${code}`;
      this.report('onRejected', [configError({ file: this.options.file, field: '', message: `cannot read the file (${code}); keeping the running config` })]);
      return 'rejected';
    }
    this.refreshTargetWatch();
    if (this.isClosed()) return 'closed';
    const hash = contentHash(text);
    if (hash === this.lastSeen) return 'unchanged';
    this.lastSeen = hash;
    if (hash === this.runningHash) return 'unchanged';

    const registry = this.options.registry ?? FILTER_REGISTRY;
    const parsed = parseConfig(text, this.options.file, { registry });
    if (!parsed.ok) return this.reject(parsed.errors);
    const withEnv = applyEnv(parsed.config, this.options.env ?? process.env);
    if (!withEnv.ok) return this.reject(withEnv.errors);
    const fileErrors = checkFiles(withEnv.config, withEnv.applied);
    if (fileErrors.length > 0) return this.reject(fileErrors);

    const running = this.snapshot.config;
    const restartRequired = describeRestartChanges(running, withEnv.config);
    // keep what cannot change live, so `current.config` says what is really running
    const { tls: _fileTls, ...rest } = withEnv.config;
    const applied: GatehouseConfig = deepFreeze({
      ...rest,
      listen: running.listen,
      telemetry: running.telemetry,
      stores: running.stores,
      ...(running.tls ? { tls: running.tls } : {}),
    });
    const built = buildRouteTable(applied, { registry, deps: this.options.deps });
    if (!built.ok) return this.reject(built.errors);
    if (this.isClosed()) return 'closed';

    this.snapshot = { config: applied, table: built.table };
    this.runningHash = hash;
    try {
      this.options.onReload?.(built.table, applied, { warnings: parsed.warnings, restartRequired });
    } catch {
      // a throwing callback must not undo a reload that has happened
    }
    return 'reloaded';
  }

  private reject(errors: readonly ConfigError[]): CheckOutcome {
    if (this.closed) return 'closed';
    this.report('onRejected', errors);
    return 'rejected';
  }
}

