// The config module's public API: what main.ts, the Envoy adapters and the admin server use.
export { ConfigValidationError, formatConfigError, type ConfigError, type ConfigErrorRoute } from './errors.js';
export {
  applyEnv,
  checkFiles,
  contentHash,
  defaultConfigPath,
  ENV,
  loadConfig,
  loadConfigFile,
  loadConfigFrom,
  parseConfig,
  type ConfigResult,
  type EnvResult,
  type LoadOptions,
  type LoadResult,
  type ParseOptions,
} from './load.js';
export { canonicalizePath, type CanonicalPath } from './path.js';
export { ConfigWatcher, type CheckOutcome, type ConfigSnapshot, type ConfigWatcherOptions, type ReloadInfo } from './reload.js';
export {
  buildRouteTable,
  compileRouteTable,
  normalizeAuthority,
  RouteTable,
  type BuildOptions,
  type BuildResult,
  type MatchRequest,
  type MatchResult,
  type PathRefusal,
  type RouteMatch,
  type TableRoute,
} from './routes.js';
export {
  DEFAULTS,
  parseListenAddress,
  type GatehouseConfig,
  type ListenAddress,
  type LogLevel,
  type NamedPredicate,
  type PathMatch,
  type RouteConfig,
  type RouteFilterConfig,
  type RouteMatchConfig,
  type TlsConfig,
  type Unmatched,
} from './schema.js';
