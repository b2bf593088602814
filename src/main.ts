// The gatehouse process: load config (GATEHOUSE_CONFIG, else the embedded dev default), start,
// hot-reload routes, and on SIGTERM drain and exit 0. Exit 2 on an invalid config at start.
// `--check`: validate the config as a start would (src/check.ts), print a summary, exit 0 or 2.
import { configNotSet, loadConfig } from './config/load.js';
import { FILTER_REGISTRY } from './filters/registry.js';
import { watchClients, watchRoutes } from './reload.js';
import { startGatehouse, StartupError } from './gatehouse.js';
import { flushLogger } from './telemetry/logger.js';
import { devOnlyFilesIn } from './config/dev-only.js';
import { checkConfig, explainRequest, parseExplainRequest, shadowingWarnings } from './check.js';

/** every value of a repeated `--name value` argument */
function argValues(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((arg, i) => {
    if (arg === name && process.argv[i + 1] !== undefined) out.push(process.argv[i + 1]!);
    else if (arg.startsWith(`${name}=`)) out.push(arg.slice(name.length + 1));
  });
  return out;
}

const EMBEDDED_WARNING = `
  ┌────────────────────────────────────────────────────────────────────────────┐
  │ gatehouse is running on its EMBEDDED DEVELOPMENT DEFAULT                   │
  │   example routes, in-memory stores, generated dev keys, loopback only.     │
  │   Not for production: set GATEHOUSE_CONFIG to your config file.            │
  └────────────────────────────────────────────────────────────────────────────┘
`;

const MEMORY_STORES_WARNING = `
  ┌────────────────────────────────────────────────────────────────────────────┐
  │ gatehouse is running with IN-MEMORY STORES (stores.kind: memory)           │
  │   nonces, challenges, devices and disabled accounts live in this process:  │
  │   replicas do not share them (a replay on another replica is accepted) and │
  │   a restart forgets them. Set stores.kind: redis for more than one process.│
  └────────────────────────────────────────────────────────────────────────────┘
`;

async function main(): Promise<void> {
  const notSet = configNotSet();
  if (notSet !== undefined) {
    process.stderr.write(`gatehouse: cannot start: ${notSet}\n`);
    process.exit(2);
  }
  const loaded = loadConfig({ registry: FILTER_REGISTRY });
  if (!loaded.ok) {
    process.stderr.write(`gatehouse: cannot start, ${loaded.file} is invalid:\n${loaded.errors.map((e) => `  ${e.format()}`).join('\n')}\n`);
    process.exit(2);
  }
  const devOnly = loaded.embeddedDefault ? [] : devOnlyFilesIn(loaded.config);
  if (devOnly.length > 0) {
    process.stderr.write(
      `gatehouse: cannot start, ${loaded.file} names dev-only key files, whose private halves are public in gatehouse's repository:\n${devOnly.map((f) => `  ${f}`).join('\n')}\n` +
        'Only the embedded development default may use them; give this deployment keys of its own.\n',
    );
    process.exit(2);
  }
  if (process.argv.includes('--check')) {
    const checked = checkConfig(loaded.config);
    if (!checked.ok) {
      process.stderr.write(`gatehouse: ${loaded.file} would not start:\n${checked.errors.map((e) => `  ${e}`).join('\n')}\n`);
      process.exit(2);
    }
    const explain = argValues('--explain');
    if (explain.length > 0) {
      // `npm run check -- --explain 'POST https://host/path' [--header 'name: value' ...]`
      const out: string[] = [];
      for (const text of explain) {
        const request = parseExplainRequest(text, argValues('--header'));
        if (!request.ok) {
          process.stderr.write(`gatehouse: ${request.message}\n`);
          process.exit(2);
        }
        out.push(...explainRequest(checked.table, request));
      }
      process.stdout.write(`${out.join('\n')}\n`);
      process.exit(0);
    }
    const warnings = [...loaded.warnings.map((w) => w.format()), ...checked.warnings].map((w) => `warning: ${w}`);
    const overrides = loaded.envOverrides.length > 0 ? [`overridden by the environment: ${loaded.envOverrides.join(', ')}`] : [];
    process.stdout.write(`gatehouse: ${loaded.file} is valid${loaded.embeddedDefault ? ' (the embedded development default)' : ''}\n${[...checked.summary, ...overrides, ...warnings].join('\n')}\n`);
    process.exit(0);
  }
  if (loaded.embeddedDefault) process.stderr.write(EMBEDDED_WARNING);
  // the embedded default says so in its own warning; any other config gets this one
  const memoryStores = !loaded.embeddedDefault && loaded.config.stores.kind === 'memory';
  if (memoryStores) process.stderr.write(MEMORY_STORES_WARNING);
  let gatehouse;
  try {
    gatehouse = await startGatehouse({ config: loaded.config });
  } catch (error) {
    process.stderr.write(`gatehouse: cannot start: ${error instanceof StartupError ? `\n${error.message}` : String(error)}\n`);
    process.exit(2);
  }
  const { logger } = gatehouse.telemetry;
  if (loaded.embeddedDefault) logger.warn({ config: loaded.file }, 'running on the embedded development default: not for production');
  if (memoryStores) logger.warn({ config: loaded.file }, 'stores.kind is memory: nonces, challenges, devices and disabled accounts are per process and not shared between replicas');
  for (const warning of loaded.warnings) logger.warn({ config: loaded.file }, warning.format());
  for (const warning of shadowingWarnings(gatehouse.routes.current())) logger.warn({ config: loaded.file }, warning);
  const watcher = watchRoutes(loaded.file, loaded.config, gatehouse, { initialHash: loaded.hash });
  const clientsWatcher = watchClients(gatehouse);
  // SIGHUP: the config is applied again even when unchanged, so a replaced key file it names (which
  // no watch sees) is taken up: key rotation without a restart. The registry is all in its own file.
  process.on('SIGHUP', () => {
    void watcher.check({ force: true });
    void clientsWatcher?.check();
  });
  logger.info(
    { grpc_port: gatehouse.grpcPort, admin_port: gatehouse.adminPort, config: loaded.file, env_overrides: loaded.envOverrides, routes: gatehouse.routes.current().routes.length },
    'listening',
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting for the drain');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, grace_ms: loaded.config.shutdown.graceMs }, 'draining: readiness off, refusing new streams');
    watcher.close();
    clientsWatcher?.close();
    gatehouse.stop().then(
      (finished) => {
        logger.info({ finished_in_grace: finished }, 'stopped');
        void flushLogger(logger).finally(() => process.exit(0));
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        void flushLogger(logger).finally(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
