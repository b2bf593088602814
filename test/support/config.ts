// The config API as the composition root wires it: with gatehouse's own filters (FILTER_REGISTRY)
// unless a test names its own registry, and fresh in-memory filter services. src/config/ takes the
// registry as a parameter (it sits above filters/ and may not name them); tests written against the
// registry-less calls use these.
import * as load from '../../src/config/load.js';
import * as routes from '../../src/config/routes.js';
import type { GatehouseConfig } from '../../src/config/types.js';
import { createFilterDeps } from '../../src/filters/deps.js';
import { FILTER_REGISTRY } from '../../src/filters/registry.js';
import type { FilterDefinition, FilterDeps } from '../../src/pipeline/types.js';
import type { RouteTable } from '../../src/config/route-table.js';

type Registry = ReadonlyMap<string, FilterDefinition>;

export function parseConfig(text: string, fileName: string, options: { readonly registry?: Registry } = {}): load.ConfigResult {
  return load.parseConfig(text, fileName, { registry: options.registry ?? FILTER_REGISTRY });
}

export function loadConfigFile(path: string, options: { readonly registry?: Registry } = {}): ReturnType<typeof load.loadConfigFile> {
  return load.loadConfigFile(path, { registry: options.registry ?? FILTER_REGISTRY });
}

export function loadConfig(options: Omit<load.LoadOptions, 'registry'> & { readonly registry?: Registry } = {}): load.LoadResult {
  return load.loadConfig({ ...options, registry: options.registry ?? FILTER_REGISTRY });
}

export function loadConfigFrom(file: string, options: Omit<load.LoadOptions, 'registry'> & { readonly registry?: Registry } = {}): ReturnType<typeof load.loadConfigFrom> {
  return load.loadConfigFrom(file, { ...options, registry: options.registry ?? FILTER_REGISTRY });
}

export function compileRouteTable(config: GatehouseConfig, registry: Registry = FILTER_REGISTRY, deps: FilterDeps = createFilterDeps()): RouteTable {
  return routes.compileRouteTable(config, registry, deps);
}

export function buildRouteTable(config: GatehouseConfig, options: { readonly registry?: Registry; readonly deps: FilterDeps }): routes.BuildResult {
  return routes.buildRouteTable(config, { registry: options.registry ?? FILTER_REGISTRY, deps: options.deps });
}
