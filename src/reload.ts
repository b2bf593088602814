// Hot reload wired to a running gatehouse: a valid new file swaps the route table for new streams
// (open streams keep theirs), an invalid one is refused, logged and counted, and the old stays.
import { ConfigWatcher } from './config/reload.js';
import type { GatehouseConfig } from './config/schema.js';
import type { RunningGatehouse } from './gatehouse.js';

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
    ...options,
    onReload: (table, _next, info) => {
      gatehouse.routes.replace(table);
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
