// Hot reload wired to a running gatehouse: a valid new file swaps the route table for new streams
// (open streams keep theirs), an invalid one is refused, logged and counted, and the old stays.
import { FileWatcher } from './config/file-watch.js';
import { ConfigWatcher } from './config/reload.js';
import { parseClientRegistry } from './config/clients-file.js';
import type { GatehouseConfig } from './config/types.js';
import type { RunningGatehouse } from './gatehouse.js';
import { releaseFilters } from './pipeline/release.js';

export function watchRoutes(
  file: string,
  config: GatehouseConfig,
  gatehouse: RunningGatehouse,
  options: {
    /** the hash of the content `config` was loaded from, so an edit made since start-up is not missed */
    initialHash?: string;
    debounceMs?: number;
    pollMs?: number;
    env?: Readonly<Record<string, string | undefined>>;
  } = {},
): ConfigWatcher {
  const { logger, metrics } = gatehouse.telemetry;
  return new ConfigWatcher({
    file,
    initial: { config, table: gatehouse.routes.current() },
    deps: gatehouse.deps,
    registry: gatehouse.registry,
    ...options,
    onReload: (table, _next, info) => {
      const replaced = gatehouse.routes.current();
      gatehouse.routes.replace(table);
      // streams already open keep the old table: its filters let go of background work, not of their phases
      for (const failure of releaseFilters(replaced.routes)) {
        logger.warn({ err: failure.error, route_id: failure.routeId, filter: failure.filter }, 'a replaced filter failed to release what it holds');
      }
      metrics.configReload('success');
      logger.info({ config: file, routes: table.routes.length }, 'config reloaded: new streams use the new routes');
      for (const warning of info.warnings) logger.warn({ config: file }, warning.format());
      for (const line of info.restartRequired) logger.warn({ config: file }, line);
    },
    onRejected: (errors) => {
      metrics.configReload('failure');
      logger.error({ config: file, errors: errors.map((e) => e.format()) }, 'config reload refused: the running routes stay');
    },
    onError: (error) => {
      logger.warn({ err: error, config: file }, 'config watch failed; polling carries on');
    },
  });
}

/**
 * Hot reload of the mtls client registry: a valid file replaces the registry for new requests; an
 * invalid or unreadable one is logged with its errors and counted, and the running registry stays.
 */
export function watchClients(gatehouse: RunningGatehouse, options: { debounceMs?: number; pollMs?: number } = {}): FileWatcher | undefined {
  const clients = gatehouse.clients;
  if (!clients) return undefined;
  const file = clients.file;
  const { logger, metrics } = gatehouse.telemetry;
  const refused = (errors: readonly string[]): void => {
    metrics.clientRegistryReload('failure');
    logger.error({ clients: file, errors }, 'client registry reload refused: the running registry stays');
  };
  return new FileWatcher({
    file,
    initialHash: clients.hash,
    ...options,
    apply: (text) => {
      const parsed = parseClientRegistry(text, file);
      if (!parsed.ok) return { rejected: parsed.errors };
      clients.replace(parsed.registry, parsed.hash);
      metrics.clientRegistryReload('success');
      logger.info({ clients: file, count: parsed.registry.size }, 'client registry reloaded: new requests use it');
      return 'reloaded';
    },
    onUnreadable: (code) => { refused([`cannot read the file (${code})`]); },
    onRejected: (errors) => { refused(errors.map((e) => e.format())); },
    onError: (error) => {
      logger.warn({ err: error, clients: file }, 'client registry watch failed; polling carries on');
    },
  });
}
