// RouteTable.match against a brute-force reading of the documented precedence (docs/config.md
// "Route matching"): on random tables and requests, both must pick the same route.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HeaderMap } from '../pipeline/headers.js';
import { compileRouteTable, parseConfig } from '../../test/support/config.js';
import { canonicalizePath } from '../pipeline/path.js';
import { splitPath } from '../pipeline/context.js';

type Kind = 'exact' | 'template' | 'prefix' | 'regex';
interface Spec {
  readonly kind: Kind;
  readonly value: string;
  readonly methods?: readonly string[];
  readonly hosts?: readonly string[];
}

const PATTERNS: readonly (readonly [Kind, string])[] = [
  ['exact', '/a/b'],
  ['exact', '/a'],
  ['exact', '/'],
  ['template', '/a/:p'],
  ['template', '/:q/b'],
  ['template', '/a/:p/c'],
  ['template', '/:q/:r'],
  ['template', '/:q/b/:s'],
  ['prefix', '/'],
  ['prefix', '/a'],
  ['prefix', '/a/'],
  ['prefix', '/a/b/'],
  ['regex', '/a/.*'],
  ['regex', '/[ab]/b'],
];
const PATHS = ['/', '/a', '/a/', '/a/b', '/a/b/', '/a/b/c', '/b/b', '/b/b/c', '/a/x', '/a/x/c', '/ab', '/c/b', '/a/%62', '/x/../a/b', '/a//b'];

const spec = fc.record(
  {
    pattern: fc.constantFrom(...PATTERNS),
    methods: fc.constantFrom(['GET'], ['POST'], ['GET', 'POST']),
    hosts: fc.constantFrom(['h1.example'], ['*.example']),
  },
  { requiredKeys: ['pattern'] },
).map((r): Spec => ({ kind: r.pattern[0], value: r.pattern[1], ...(r.methods ? { methods: r.methods } : {}), ...(r.hosts ? { hosts: r.hosts } : {}) }));

function templateRegex(t: string): RegExp {
  return new RegExp(`^${t.replace(/:[a-z]+/g, '[^/]+')}$`);
}

/** segment classes left to right: literal before parameter; ties by config order */
function compareTemplates(a: string, b: string): number {
  const sa = a.split('/');
  const sb = b.split('/');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const pa = sa[i]!.startsWith(':') ? 1 : 0;
    const pb = sb[i]!.startsWith(':') ? 1 : 0;
    if (pa !== pb) return pa - pb;
  }
  return 0;
}

function reference(specs: readonly Spec[], method: string, host: string, rawPath: string): number | undefined {
  const canonical = canonicalizePath(rawPath);
  assert.ok(canonical.ok);
  const path = canonical.path;
  const indexed = specs.map((s, i) => ({ s, i }));
  const ok = ({ s }: { s: Spec }) =>
    (!s.methods || s.methods.includes(method)) && (!s.hosts || s.hosts.some((h) => h === host || (h.startsWith('*.') && host.endsWith(h.slice(1)))));
  const ordered = [
    ...indexed.filter(({ s }) => s.kind === 'exact' && s.value === path),
    ...indexed
      .filter(({ s }) => s.kind === 'template' && templateRegex(s.value).test(path))
      .sort((x, y) => compareTemplates(x.s.value, y.s.value) || x.i - y.i),
    ...indexed.filter(({ s }) => s.kind === 'prefix' && path.startsWith(s.value)).sort((x, y) => y.s.value.length - x.s.value.length || x.i - y.i),
    ...indexed
      .filter(({ s }) => s.kind === 'regex' && new RegExp(`^(?:${s.value})$`).test(path))
      // regex buckets in order of their first route, routes of one regex in config order
      .sort((x, y) => indexed.findIndex((z) => z.s.kind === 'regex' && z.s.value === x.s.value) - indexed.findIndex((z) => z.s.kind === 'regex' && z.s.value === y.s.value) || x.i - y.i),
  ];
  return ordered.find(ok)?.i;
}

function yaml(specs: readonly Spec[]): string {
  return `routes:\n${specs
    .map((s, i) => {
      const more = `${s.methods ? `, methods: [${s.methods.join(', ')}]` : ''}${s.hosts ? `, hosts: [${s.hosts.map((h) => JSON.stringify(h)).join(', ')}]` : ''}`;
      return `  - { id: r${i}, match: { path: { ${s.kind}: ${JSON.stringify(s.value)} }${more} } }`;
    })
    .join('\n')}\n`;
}

test('on random tables and requests, match picks exactly the route the documented precedence picks', () => {
  fc.assert(
    fc.property(
      fc.array(spec, { minLength: 1, maxLength: 10 }),
      (specs) => {
        const parsed = parseConfig(yaml(specs), 'p.yaml');
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.map((e) => e.format()).join('\n'));
        const table = compileRouteTable(parsed.config);
        // every request shape against this table
        for (const path of PATHS) {
          for (const method of ['GET', 'POST', 'PUT']) {
            for (const host of ['h1.example', 'h2.example', 'other.test']) {
              const m = table.match({ method, authority: `${host}:443`, ...splitPath(path), headers: new HeaderMap() });
              assert.ok(m === undefined || !('refused' in m));
              const expected = reference(specs, method, host, path);
              assert.equal(m?.route.index, expected, `${method} ${host} ${path}\n${yaml(specs)}`);
            }
          }
        }
      },
    ),
    { numRuns: 400 },
  );
});
