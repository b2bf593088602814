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
import type { FilterDefinition, FilterDeps } from '../pipeline/types.js';
import { configError, type ConfigError } from './errors.js';
import { FileWatcher, type ApplyOutcome, type CheckOutcome } from './file-watch.js';
import { applyEnv, checkFiles, deepFreeze, parseConfig } from './load.js';
import type { RouteTable } from './route-table.js';
import { buildRouteTable } from './routes.js';
import type { GatehouseConfig } from './types.js';

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
  /** the filters routes may name (FILTER_REGISTRY, passed in by the composition root) */
  readonly registry: ReadonlyMap<string, FilterDefinition>;
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

export type { CheckOutcome } from './file-watch.js';

function describeRestartChanges(running: GatehouseConfig, next: GatehouseConfig): string[] {
  const out: string[] = [];
  const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
  if (running.listen.grpc.address !== next.listen.grpc.address) out.push(`listen.grpc changed (${running.listen.grpc.address} → ${next.listen.grpc.address}): requires a restart`);
  if (running.listen.admin.address !== next.listen.admin.address) out.push(`listen.admin changed (${running.listen.admin.address} → ${next.listen.admin.address}): requires a restart`);
  if (JSON.stringify(running.tls) !== JSON.stringify(next.tls)) out.push(`tls changed (${show(running.tls)} → ${show(next.tls)}): requires a restart`);
  if (running.mtls?.clientsFile !== next.mtls?.clientsFile) out.push(`mtls.clientsFile changed (${show(running.mtls?.clientsFile)} → ${show(next.mtls?.clientsFile)}): requires a restart`);
  for (const key of ['logLevel', 'serviceName', 'otlpEndpoint', 'sampleRatio', 'accessLog', 'logFormat'] as const) {
    if (running.telemetry[key] !== next.telemetry[key]) out.push(`telemetry.${key} changed (${show(running.telemetry[key])} → ${show(next.telemetry[key])}): requires a restart`);
  }
  // the stores are connections and caches built at start; the password is a reference, never a value
  if (JSON.stringify(running.stores) !== JSON.stringify(next.stores)) out.push(`stores changed (${show(running.stores)} → ${show(next.stores)}): requires a restart`);
  // the event sink, its rules and the admin API are built at start
  if (JSON.stringify(running.securityEvents) !== JSON.stringify(next.securityEvents)) out.push(`securityEvents changed (${show(running.securityEvents)} → ${show(next.securityEvents)}): requires a restart`);
  if (running.admin?.listen?.address !== next.admin?.listen?.address) out.push(`admin.listen changed (${show(running.admin?.listen?.address)} → ${show(next.admin?.listen?.address)}): requires a restart`);
  if (running.admin?.tokenFile !== next.admin?.tokenFile) out.push(`admin.tokenFile changed (${show(running.admin?.tokenFile)} → ${show(next.admin?.tokenFile)}): requires a restart (the file's content is read on every call)`);
  return out;
}

export class ConfigWatcher {
  private snapshot: ConfigSnapshot;
  private readonly options: ConfigWatcherOptions;
  private readonly watch: FileWatcher;

  constructor(options: ConfigWatcherOptions) {
    this.options = options;
    this.snapshot = options.initial;
    this.watch = new FileWatcher({
      file: options.file,
      ...(options.initialHash === undefined ? {} : { initialHash: options.initialHash }),
      ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      apply: (text, isClosed) => this.apply(text, isClosed),
      onUnreadable: (code) => {
        this.options.onRejected?.([configError({ file: options.file, field: '', message: `cannot read the file (${code}); keeping the running config` })]);
      },
      onRejected: (errors) => this.options.onRejected?.(errors),
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /** what new streams should use; a stream keeps the snapshot it started with */
  get current(): ConfigSnapshot {
    return this.snapshot;
  }

  /**
   * Read the file now (e.g. on SIGHUP or from an admin endpoint); resolves once it is handled.
   * `force`: rebuild the routes even when the file is unchanged, re-reading the key files it names.
   */
  check(options: { readonly force?: boolean } = {}): Promise<CheckOutcome> {
    return this.watch.check(options);
  }

  close(): void {
    this.watch.close();
  }

  private apply(text: string, isClosed: () => boolean): ApplyOutcome {
    const { registry } = this.options;
    const parsed = parseConfig(text, this.options.file, { registry });
    if (!parsed.ok) return { rejected: parsed.errors };
    const withEnv = applyEnv(parsed.config, this.options.env ?? process.env);
    if (!withEnv.ok) return { rejected: withEnv.errors };
    const fileErrors = checkFiles(withEnv.config, withEnv.applied);
    if (fileErrors.length > 0) return { rejected: fileErrors };

    const running = this.snapshot.config;
    const restartRequired = describeRestartChanges(running, withEnv.config);
    // keep what cannot change live, so `current.config` says what is really running
    const { tls: _fileTls, mtls: _fileMtls, admin: _fileAdmin, ...rest } = withEnv.config;
    const applied: GatehouseConfig = deepFreeze({
      ...rest,
      listen: running.listen,
      telemetry: running.telemetry,
      stores: running.stores,
      securityEvents: running.securityEvents,
      ...(running.tls ? { tls: running.tls } : {}),
      ...(running.mtls ? { mtls: running.mtls } : {}),
      ...(running.admin ? { admin: running.admin } : {}),
    });
    const built = buildRouteTable(applied, { registry, deps: this.options.deps });
    if (!built.ok) return { rejected: built.errors };
    if (isClosed()) return 'closed';

    this.snapshot = { config: applied, table: built.table };
    try {
      this.options.onReload?.(built.table, applied, { warnings: parsed.warnings, restartRequired });
    } catch {
      // a throwing callback must not undo a reload that has happened
    }
    return 'reloaded';
  }
}
