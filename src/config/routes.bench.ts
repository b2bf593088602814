// Micro-benchmark of RouteTable.match for `npm run bench`: a realistic table (exact, template, prefix
// and regex routes, host and method predicates, one fallback) and a request mix that exercises every
// path kind, including a refusal and a miss.
import { HeaderMap } from '../pipeline/headers.js';
import { compileRouteTable, parseConfig } from '../../test/support/config.js';
import { splitPath } from '../pipeline/context.js';
import type { RouteMatchInput } from '../pipeline/routing.js';

export interface RouteMatchBench {
  readonly operation: string;
  /** RouteTable.match calls per second, one core */
  readonly opsPerSec: number;
  readonly routes: number;
}

function benchConfig(): string {
  const lines = ['routes:'];
  const services = ['accounts', 'payments', 'cards', 'loans', 'users', 'orders', 'devices', 'rewards', 'notices', 'branches'];
  for (const s of services) {
    lines.push(
      `  - { id: ${s}-me, match: { path: { exact: /v1/${s}/me }, methods: [GET] } }`,
      `  - { id: ${s}-one, match: { path: { template: "/v1/${s}/:id" }, methods: [GET, PUT] } }`,
      `  - { id: ${s}-sub, match: { path: { template: "/v1/${s}/:id/items/:itemId" } } }`,
      `  - { id: ${s}-all, match: { path: { prefix: /v1/${s}/ }, hosts: [api.example.com, "*.example.com"] } }`,
    );
  }
  lines.push(
    '  - { id: legacy, match: { path: { regex: "/legacy/[0-9]+" } } }',
    '  - { id: partner, match: { path: { prefix: /partner/ }, headers: [{ name: x-partner, present: true }] } }',
  );
  return lines.join('\n');
}

export function benchRouteMatch(durationMs = 1000): RouteMatchBench {
  const parsed = parseConfig(benchConfig(), 'bench.yaml');
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  const table = compileRouteTable(parsed.config);
  const headers = new HeaderMap([
    ['user-agent', 'bench'],
    ['x-partner', 'p1'],
  ]);
  // split as the lifecycle splits each request's :path once, before matching
  const requests: RouteMatchInput[] = (
    [
    { method: 'GET', authority: 'api.example.com', path: '/v1/accounts/me', headers },
    { method: 'GET', authority: 'api.example.com:443', path: '/v1/payments/12345?expand=true', headers },
    { method: 'POST', authority: 'api.example.com', path: '/v1/cards/987', headers }, // method fails: falls back to the prefix
    { method: 'GET', authority: 'm.example.com', path: '/v1/orders/55/items/7', headers },
    { method: 'GET', authority: 'api.example.com', path: '/v1/loans/a/b/c/d', headers },
    { method: 'GET', authority: 'api.example.com', path: '/legacy/42', headers },
    { method: 'GET', authority: 'api.example.com', path: '/partner/x', headers },
    { method: 'GET', authority: 'api.example.com', path: '/v1/users/%61bc', headers },
    ] as const
  ).map(({ path, ...rest }) => ({ ...rest, ...splitPath(path) }));
  let sink = 0;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const m = table.match(requests[i % requests.length]!);
      if (m !== undefined && !('refused' in m)) sink += m.route.index;
    }
  };
  run(50_000); // warm up
  let iterations = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(durationMs) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    run(10_000);
    iterations += 10_000;
    now = process.hrtime.bigint();
  }
  const seconds = Number(now - start) / 1e9;
  if (sink < 0) throw new Error('unreachable');
  return { operation: `RouteTable.match (${table.routes.length} routes, mixed request paths)`, opsPerSec: Math.round(iterations / seconds), routes: table.routes.length };
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  console.log(benchRouteMatch());
}
