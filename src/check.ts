// `gatehouse --check` (npm run check): everything a start would refuse that can be known without
// opening a listener or a connection, like `envoy --mode validate` or `nginx -t`. For CI before a
// rollout, and for an operator editing a config: the same errors as a start, exit 2; or a summary
// of what the config serves, exit 0. Redis is not contacted (its outage never stops a start either).
import { buildRouteTable } from './config/routes.js';
import type { GatehouseConfig } from './config/schema.js';
import { loadClientRegistry } from './config/clients-file.js';
import type { ClientRegistry } from './filters/mtls/clients.js';
import { FILTER_REGISTRY } from './filters/registry.js';
import { createFilterDeps } from './filters/deps.js';
import type { FilterDefinition } from './pipeline/types.js';
import { readToken } from './security/admin.js';

export type ConfigCheck =
  | { readonly ok: true; readonly summary: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

/** The checks startGatehouse makes before it listens, on `config` as loadConfig returned it. */
export function checkConfig(config: GatehouseConfig, registry: ReadonlyMap<string, FilterDefinition> = FILTER_REGISTRY): ConfigCheck {
  const file = config.source?.file ?? 'config';
  const errors: string[] = [];
  let clients: ClientRegistry | undefined;
  if (config.mtls) {
    const loaded = loadClientRegistry(config.mtls.clientsFile);
    if (loaded.ok) clients = loaded.registry;
    else errors.push(...loaded.errors.map((e) => e.format()));
  }
  if (config.admin !== undefined) {
    const token = readToken(config.admin.tokenFile);
    if (!token.ok) errors.push(`${file}: admin.tokenFile: ${token.message}`);
  }
  // filters compile against in-memory stores: nothing is opened, and compiling is what can fail
  const registryNow = clients;
  const deps = createFilterDeps(registryNow === undefined ? {} : { mtls: { clients: () => registryNow, audit: () => undefined } });
  const built = buildRouteTable(config, { registry, deps });
  if (!built.ok) errors.push(...built.errors.map((e) => e.format()));
  if (errors.length > 0 || !built.ok) return { ok: false, errors };
  const routes = built.table.routes;
  return {
    ok: true,
    summary: [
      `${routes.length} route${routes.length === 1 ? '' : 's'}, unmatched requests: ${config.unmatched}`,
      ...routes.map((route) => `  ${route.id}: ${route.pathTemplate} → ${route.filters.map((f) => f.name).join(', ') || '(no filters)'}`),
      `stores: ${config.stores.kind}${config.stores.kind === 'redis' && config.stores.redis ? ` (${config.stores.redis.mode}; not contacted by --check)` : ''}`,
      ...(config.mtls && clients ? [`mtls clients: ${clients.size} in ${config.mtls.clientsFile}`] : []),
      `admin API: ${config.admin === undefined ? 'off' : 'on'}; security-event rules: ${config.securityEvents.rules.map((r) => r.name).join(', ') || 'none'}`,
    ],
  };
}
