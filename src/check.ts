// `gatehouse --check` (npm run check): everything a start would refuse that can be known without
// opening a listener or a connection, like `envoy --mode validate` or `nginx -t`. For CI before a
// rollout, and for an operator editing a config: the same errors as a start, exit 2; or a summary
// of what the config serves, exit 0. Redis is not contacted (its outage never stops a start either).
import { issuesToErrors } from './config/issues.js';
import type { RouteTable } from './config/route-table.js';
import type { TableRoute } from './config/route-types.js';
import { buildRouteTable } from './config/routes.js';
import { shadowingIssues } from './config/shadowing.js';
import { HeaderMap } from './pipeline/headers.js';
import { denyReason } from './pipeline/deny.js';
import type { GatehouseConfig } from './config/types.js';
import { loadClientRegistry } from './config/clients-file.js';
import type { ClientRegistry } from './filters/mtls/clients.js';
import { FILTER_REGISTRY } from './filters/registry.js';
import { createFilterDeps } from './filters/deps.js';
import type { FilterDefinition } from './pipeline/types.js';
import { readToken } from './security/admin.js';
import { splitPath } from './pipeline/context.js';

export type ConfigCheck =
  | { readonly ok: true; readonly summary: readonly string[]; readonly table: RouteTable; readonly warnings: readonly string[] }
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
    table: built.table,
    warnings: shadowingWarnings(built.table),
    summary: [
      `${routes.length} route${routes.length === 1 ? '' : 's'}, unmatched requests: ${config.unmatched}`,
      ...routes.map((route) => `  ${route.id}: ${route.pathTemplate} → ${route.filters.map((f) => f.name).join(', ') || '(no filters)'}`),
      `stores: ${config.stores.kind}${config.stores.kind === 'redis' && config.stores.redis ? ` (${config.stores.redis.mode}; not contacted by --check)` : ''}`,
      ...(config.mtls && clients ? [`mtls clients: ${clients.size} in ${config.mtls.clientsFile}`] : []),
      `admin API: ${config.admin === undefined ? 'off' : 'on'}; security-event rules: ${config.securityEvents.rules.map((r) => r.name).join(', ') || 'none'}`,
    ],
  };
}

/** Shadowing findings (src/config/shadowing.ts) as warning lines naming file and field. */
export function shadowingWarnings(table: RouteTable): string[] {
  const file = table.config.source?.file ?? 'config';
  const written = { routes: table.config.routes.map((r) => ({ id: r.id })) };
  return issuesToErrors(file, written, shadowingIssues(table)).map((e) => e.format());
}

// What each filter needs from a request before it lets it through (and what it answers when not).
const FILTER_NEEDS: Readonly<Record<string, string>> = {
  sanitize: 'nothing from the client: strips x-passport, x-gatehouse-*, x-forwarded-client-cert (any spelling, _ or -) and configured headers; refuses oversized headers or path (431/414) and control characters (400)',
  mtls: 'a client certificate Envoy verified, registered in mtls.clientsFile for this route, method and scopes, not revoked (401/403)',
  signed: 'an RFC 9421 signature by a credential-bound key over method, path, authority and Content-Digest of the whole body; a fresh nonce; a device and account that are not revoked or disabled (401/403/409)',
  issuance: 'a device-endpoint request gatehouse answers itself: challenge, enroll (login token + attestation verdict), credential',
  e2ee: 'an HPKE-sealed body to one of the route\'s keys, bound to this authority; the response is sealed back',
  e2eeKeys: 'nothing: gatehouse answers with the published e2ee key configurations',
  passport: 'a verified identity from signed; hands the upstream x-passport (a short-lived JWS)',
  passportKeys: 'nothing: gatehouse answers with the passport JWKS',
  breaker: 'the route\'s (or its feature\'s) breaker not open (503 circuit_open while it is)',
  headers: 'nothing: edits request and response headers',
};

/** `[METHOD] [scheme://authority]/path[?query]` — the path kept exactly as written (no URL normalization). */
export function parseExplainRequest(text: string, headers: readonly string[] = []): { ok: true; method: string; authority: string; path: string; headers: HeaderMap } | { ok: false; message: string } {
  const m = /^\s*(?:([A-Za-z]+)\s+)?(?:(?:https?):\/\/([^/?#\s]*))?(\/\S*)\s*$/.exec(text);
  if (!m) return { ok: false, message: `--explain takes "METHOD https://host/path" (method and scheme://host optional), got ${JSON.stringify(text)}` };
  const map = new HeaderMap();
  for (const header of headers) {
    const colon = header.indexOf(':', 1);
    if (colon === -1) return { ok: false, message: `--header takes "name: value", got ${JSON.stringify(header)}` };
    map.add(header.slice(0, colon).trim().toLowerCase(), header.slice(colon + 1).trim());
  }
  return { ok: true, method: (m[1] ?? 'GET').toUpperCase(), authority: m[2] ?? '', path: m[3]!, headers: map };
}

function describeRoute(route: TableRoute): string {
  const { path, hosts, methods } = route.match;
  const parts = [`${path.kind} ${path.value}`];
  if (hosts) parts.push(`hosts ${hosts.join(', ')}`);
  if (methods) parts.push(`methods ${methods.join(', ')}`);
  if (route.match.headers) parts.push(`headers ${route.match.headers.map((h) => h.name).join(', ')}`);
  if (route.match.query) parts.push(`query ${route.match.query.map((q) => q.name).join(', ')}`);
  return parts.join('; ');
}

/** `npm run check -- --explain '…'`: which route a request lands on, why, its chain and what each filter needs. */
export function explainRequest(table: RouteTable, request: { method: string; authority: string; path: string; headers: HeaderMap }): string[] {
  const { result, trace } = table.explain({ ...request, ...splitPath(request.path) });
  const lines = [`${request.method} ${request.authority === '' ? '' : `//${request.authority}`}${request.path}`];
  if (trace.canonicalPath === undefined) {
    // canonicalization itself refused it
  } else {
    lines.push(`  canonical path: ${trace.canonicalPath}${trace.canonicalPath === request.path.split('?')[0] ? '' : ' (decoded, dot segments resolved, slashes merged, ";" parameters cut)'}`);
    lines.push(`  matched by its path: ${trace.direct ? `${trace.direct.route.id} (${describeRoute(trace.direct.route)})` : 'no route'}`);
  }
  if (trace.variant) {
    const kinds = [trace.variant.trailingSlash ? 'trailing slash' : '', trace.variant.suffix ? 'trailing dot or .suffix' : '', trace.variant.key !== trace.variant.path ? 'case' : ''].filter(Boolean);
    lines.push(`  variant form: ${trace.variant.path} (folded: ${kinds.join(', ') || 'a route path ends in "/" or has upper case'})`);
    lines.push(`  matched by its variant form: ${trace.viaVariant ? `${trace.viaVariant.route.id} (${describeRoute(trace.viaVariant.route)})` : 'no route'}`);
  }
  if (trace.policy) lines.push(`  path policy: ${trace.policy}`);
  if (result === undefined) {
    lines.push(table.unmatched === 'deny' ? `  → no route: unmatched: deny answers ${denyReason('route_not_found').status} route_not_found` : '  → no route: unmatched: pass lets it through with only the sanitize baseline');
    return lines;
  }
  if ('refused' in result) {
    lines.push(`  → refused ${denyReason(result.refused).status} ${result.refused}: ${result.detail}`);
    return lines;
  }
  const route = result.route;
  lines.push(`  → route ${route.id} (routes[${route.index}]: ${describeRoute(route)}), budget ${route.budgetMs} ms, body up to ${route.maxBodyBytes} bytes`);
  if (Object.keys(result.params).length > 0) lines.push(`  params: ${Object.entries(result.params).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}`);
  lines.push('  filter chain, in order:');
  route.filters.forEach((f, i) => lines.push(`    ${i + 1}. ${f.name}: needs ${FILTER_NEEDS[f.name] ?? '(no description)'}`));
  // response headers for every route: the status for the log, and x-gatehouse-* stripped from every answer
  const bodies = [route.needs.requestBody ? 'the request body' : '', route.needs.responseBody ? 'the response body' : ''].filter(Boolean);
  lines.push(`  Envoy must send: the request headers, the response headers${bodies.length > 0 ? `, ${bodies.join(', ')}` : ''}`);
  if (route.needs.responseHeaders || route.needs.responseBody) lines.push("  ext_proc only: its filters act on the upstream's answer, which ext_authz never shows gatehouse");
  return lines;
}
