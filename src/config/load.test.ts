import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { buildRouteTable, loadConfig, loadConfigFile, parseConfig } from '../../test/support/config.js';
import { hasLookaround } from './values.js';
import { applyEnv, configNotSet, defaultConfigPath, findPackageRoot, type ConfigResult } from './load.js';
import type { GatehouseConfig } from './types.js';
import { FILTER_REGISTRY } from '../filters/registry.js';
import { createFilterDeps } from '../filters/deps.js';

function errorsOf(result: ConfigResult | { ok: false; errors: readonly { format(): string }[] } | { ok: true }): string[] {
  assert.equal(result.ok, false, 'expected the config to be refused');
  return (result as { errors: readonly { format(): string }[] }).errors.map((e) => e.format());
}

function valid(text: string, file = 'gatehouse.yaml'): GatehouseConfig {
  const result = parseConfig(text, file);
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  return result.config;
}

const ROUTE = `
routes:
  - id: accounts
    match: { path: { prefix: /v1/accounts/ } }
`;

test('a full config parses into the documented shape with every value as written', () => {
  const config = valid(`
listen: { grpc: "0.0.0.0:9101", admin: "[::1]:9102" }
unmatched: pass
defaults: { budgetMs: 120, maxBodyBytes: 2048 }
envoy: { messageTimeoutMs: 250 }
telemetry: { logLevel: warn, serviceName: gh, otlpEndpoint: "http://otel:4318", accessLog: false }
shutdown: { graceMs: 5000 }
securityEvents:
  stream: { key: "fds:events", maxLen: 5000 }
  maxBuffered: 50
  batchSize: 10
  flushTimeoutMs: 500
  rules:
    - { name: forged, codes: [signature_invalid, signature_replayed], threshold: 3, windowSeconds: 60 }
    - { name: verified-only, codes: [device_revoked], threshold: 2, windowSeconds: 10, minTrust: verified, reason: "revoked device in use" }
admin: { tokenFile: admin.token }
routes:
  - id: accounts-read
    match:
      hosts: [API.Example.com, "*.example.com"]
      path: { template: /v1/accounts/:accountId }
      methods: [get, HEAD]
      headers: [{ name: X-App-Version, exact: "1.2" }, { name: x-beta, present: false }]
      query: [{ name: lang, regex: "ko|en" }]
    budgetMs: 100
    maxBodyBytes: 65536
    filters:
      - headers: { request: { set: { X-Gateway: gatehouse } } }
`);
  assert.deepEqual(JSON.parse(JSON.stringify(config)), {
    source: { file: 'gatehouse.yaml' },
    listen: { grpc: { host: '0.0.0.0', port: 9101, address: '0.0.0.0:9101' }, admin: { host: '::1', port: 9102, address: '[::1]:9102' } },
    unmatched: 'pass',
    pathPolicy: { shadowing: 'warn' },
    defaults: { budgetMs: 120, maxBodyBytes: 2048, filters: [] },
    envoy: { messageTimeoutMs: 250, maxStreams: 20000, maxStreamsPerConnection: 1000, streamIdleTimeoutMs: 300000 },
    telemetry: { logLevel: 'warn', serviceName: 'gh', accessLog: false, logFormat: 'default', otlpEndpoint: 'http://otel:4318' },
    shutdown: { graceMs: 5000 },
    stores: { kind: 'memory', keyPrefix: 'gatehouse:', maxMemoryNonces: 1_000_000, deviceCache: { maxEntries: 10_000, ttlMs: 5_000 }, accountCache: { maxEntries: 10_000, ttlMs: 2_000 } },
    securityEvents: {
      streamKey: 'fds:events',
      streamMaxLen: 5000,
      maxBuffered: 50,
      batchSize: 10,
      flushTimeoutMs: 500,
      rules: [
        { name: 'forged', codes: ['signature_invalid', 'signature_replayed'], threshold: 3, windowSeconds: 60, minTrust: 'verified', reason: '3 events of signature_invalid, signature_replayed within 60 s' },
        { name: 'verified-only', codes: ['device_revoked'], threshold: 2, windowSeconds: 10, minTrust: 'verified', reason: 'revoked device in use' },
      ],
    },
    admin: { tokenFile: resolve('admin.token') },
    routes: [
      {
        id: 'accounts-read',
        match: {
          path: { kind: 'template', value: '/v1/accounts/:accountId' },
          hosts: ['api.example.com', '*.example.com'],
          methods: ['GET', 'HEAD'],
          headers: [
            { name: 'x-app-version', kind: 'exact', value: '1.2' },
            { name: 'x-beta', kind: 'present', value: false },
          ],
          query: [{ name: 'lang', kind: 'regex', value: 'ko|en' }],
        },
        budgetMs: 100,
        maxBodyBytes: 65536,
        filters: [{ name: 'headers', config: { request: { set: { 'X-Gateway': 'gatehouse' } } } }],
      },
    ],
  });
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.routes[0]!.match), 'the config is deeply frozen');
});

test('omitted sections take the documented defaults', () => {
  const config = valid(ROUTE);
  assert.equal(config.listen.grpc.address, '0.0.0.0:9001');
  assert.equal(config.listen.admin.address, '0.0.0.0:9002');
  assert.equal(config.unmatched, 'deny');
  assert.deepEqual({ ...config.defaults }, { budgetMs: 150, maxBodyBytes: 1048576, filters: [] });
  assert.equal(config.envoy.messageTimeoutMs, 200);
  assert.deepEqual({ ...config.telemetry }, { logLevel: 'info', serviceName: 'gatehouse', accessLog: true, logFormat: 'default' });
  assert.equal(config.shutdown.graceMs, 20000);
  assert.equal(config.tls, undefined);
  assert.deepEqual(config.routes[0]!.filters, []);
  assert.deepEqual(JSON.parse(JSON.stringify(config.securityEvents)), { streamKey: 'gatehouse:security-events', streamMaxLen: 100_000, maxBuffered: 1000, batchSize: 100, flushTimeoutMs: 2000, rules: [] });
  assert.equal(config.admin, undefined);
});

test('security-event rules: a code that is not suspicious, a trust below verified, a zero threshold and a duplicate name are errors naming file, line and field', () => {
  const errors = errorsOf(
    parseConfig(
      `securityEvents:
  rules:
    - { name: a, codes: [signature_missing], threshold: 3, windowSeconds: 60 }
    - { name: a, codes: [signature_invalid], threshold: 0, windowSeconds: 60, minTrust: claimed }
${ROUTE}`,
      'c.yaml',
    ),
  );
  assert.equal(errors.length, 3, errors.join('\n'));
  assert.match(errors[0]!, /^c\.yaml:3: securityEvents\.rules\[0\]\.codes\[0\]: "signature_missing" is not a suspicious deny code \(one of signature_invalid, /);
  assert.match(errors.find((e) => e.includes('threshold')) ?? '', /^c\.yaml:4: securityEvents\.rules\[1\]\.threshold: /);
  assert.match(errors.find((e) => e.includes('minTrust')) ?? '', /^c\.yaml:4: securityEvents\.rules\[1\]\.minTrust: /);
  // credential trust is anyone's who saw the credential: no rule may count it
  const credential = errorsOf(parseConfig(`securityEvents:\n  rules:\n    - { name: a, codes: [signature_invalid], threshold: 3, windowSeconds: 60, minTrust: credential }\n${ROUTE}`, 'c.yaml'));
  assert.equal(credential.length, 1, credential.join('\n'));
  assert.equal(credential[0], 'c.yaml:3: securityEvents.rules[0].minTrust: must be one of "verified", got the string "credential"');
  const twice = errorsOf(parseConfig(`securityEvents:\n  rules:\n    - { name: a, codes: [signature_invalid], threshold: 3, windowSeconds: 60 }\n    - { name: a, codes: [signature_replayed], threshold: 3, windowSeconds: 60 }\n${ROUTE}`, 'c.yaml'));
  assert.deepEqual(twice, ['c.yaml:4: securityEvents.rules[1].name: rule a is defined twice']);
});

test('an unknown filter is an error naming file, line, route, field and the known filters', () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - id: a
    match: { path: { exact: /a } }
  - id: accounts
    match: { path: { prefix: /v1/ } }
    filters:
      - hedaers: {}
`,
      'routes.yaml',
    ),
  );
  assert.deepEqual(errors, ['routes.yaml:7: routes[1] (id "accounts"): filters[0].hedaers: unknown filter "hedaers"; known filters: breaker, e2ee, e2eeKeys, headers, issuance, mtls, passport, passportKeys, sanitize, signed']);
});

test("a filter's own schema error carries the full field path below the filter", () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - id: a
  - id: b
  - id: accounts
    match: { path: { prefix: /v1/ } }
    filters:
      - headers: { request: { set: { X-Foo: "bad\\u0001value" } } }
`,
      'routes.yaml',
    ),
  );
  assert.ok(errors.includes('routes.yaml:7: routes[2] (id "accounts"): filters[0].headers.request.set.X-Foo: must not contain control characters'), errors.join('\n'));
});

test('an unknown key is an error that lists the keys allowed there, at top level, in a route and in a filter', () => {
  const errors = errorsOf(
    parseConfig(
      `listen: { grpc: "0.0.0.0:1", gprc: "x" }
routse: []
routes:
  - id: a
    match: { path: { exact: /a }, method: [GET] }
    filters:
      - headers: { requets: {} }
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:1: listen.gprc: unknown key; allowed here: grpc, admin',
    'c.yaml:2: routse: unknown key; allowed here: listen, tls, unmatched, pathPolicy, defaults, envoy, telemetry, shutdown, stores, mtls, securityEvents, admin, routes',
    'c.yaml:5: routes[0] (id "a"): match.method: unknown key; allowed here: hosts, path, methods, headers, query, trailingSlash, caseSensitive',
    'c.yaml:7: routes[0] (id "a"): filters[0].headers.requets: unknown key; allowed here: request, response',
  ]);
});

test('a value of the wrong type says what was expected and what was found', () => {
  const errors = errorsOf(
    parseConfig(
      `unmatched: maybe
defaults: { budgetMs: "100", maxBodyBytes: 1.5 }
telemetry: { accessLog: "yes", logLevel: loud }
routes:
  - id: a
    match: { path: { exact: /a }, methods: [1] }
    budgetMs: 0
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:1: unmatched: must be one of "deny", "pass", got the string "maybe"',
    'c.yaml:2: defaults.budgetMs: must be a number, got the string "100"',
    'c.yaml:2: defaults.maxBodyBytes: must be an integer, got number 1.5',
    'c.yaml:3: telemetry.logLevel: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got the string "loud"',
    'c.yaml:3: telemetry.accessLog: must be true or false, got the string "yes"',
    'c.yaml:6: routes[0] (id "a"): match.methods[0]: must be a string, got number 1',
    'c.yaml:7: routes[0] (id "a"): budgetMs: must be at least 1, got number 0',
  ]);
});

test('a missing required field is reported at its parent', () => {
  const errors = errorsOf(parseConfig('routes:\n  - id: a\n    filters: []\n', 'c.yaml'));
  assert.deepEqual(errors, ['c.yaml:2: routes[0] (id "a"): match: is required']);
});

test('bad regular expressions in path, header and query predicates are errors with the reason', () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - id: r
    match:
      path: { regex: "^/v1/(x" }
      headers: [{ name: x-a, regex: "[" }]
      query: [{ name: q, regex: "a{2,1}" }]
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:4: routes[0] (id "r"): match.path.regex: invalid regular expression "^/v1/(x": Unterminated group',
    'c.yaml:5: routes[0] (id "r"): match.headers[0].regex: invalid regular expression "[": Unterminated character class',
    'c.yaml:6: routes[0] (id "r"): match.query[0].regex: invalid regular expression "a{2,1}": numbers out of order in {} quantifier',
  ]);
});

test('regexes that only a backtracking engine can run (back-references, lookaround) are errors that say why', () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - id: r
    match:
      path: { regex: "/v1/(a)\\\\1" }
      headers: [{ name: x-a, regex: "(?=x)x" }]
      query: [{ name: q, regex: "(?<!a)b" }]
`,
      'c.yaml',
    ),
  );
  assert.equal(errors.length, 3, errors.join('\n'));
  for (const [index, field] of ['match.path.regex', 'match.headers[0].regex', 'match.query[0].regex'].entries()) {
    assert.match(errors[index] ?? '', new RegExp(`^c\\.yaml:${index + 4}: routes\\[0\\] \\(id "r"\\): ${field.replace(/[.[\]]/g, '\\$&')}: regular expression .* cannot match in linear time: gatehouse, like Envoy's RE2, does not support them$`));
  }
  // template parameter constraints go to the router, which refuses nested quantifiers
  assert.deepEqual(errorsOf(parseConfig('routes:\n  - id: t\n    match: { path: { template: "/v1/:id((a+)+)" } }\n', 'c.yaml')), [
    'c.yaml:3: routes[0] (id "t"): match.path.template: is not a valid path template: The regex \'((a+)+)\' is not safe!',
  ]);
});

test('a duplicate route id and a filter listed twice are errors naming both places', () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - id: a
    match: { path: { exact: /a } }
  - id: b
    match: { path: { exact: /b } }
    filters: [{ headers: {} }, { headers: {} }]
  - id: a
    match: { path: { exact: /c } }
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:6: routes[1] (id "b"): filters[1]: filter "headers" is listed twice (also filters[0]); a route runs each filter once',
    'c.yaml:7: routes[2] (id "a"): id: duplicate route id "a" (also routes[0])',
  ]);
});

test('cross-field errors are reported together with field errors in one pass, in line order', () => {
  const errors = errorsOf(
    parseConfig(
      `defaults: { budgetMs: 300 }
routes:
  - { id: a, match: { path: { exact: /a } }, budgetMs: "fast" }
  - { id: a, match: { path: { exact: /b } }, filters: [{ headers: {} }, { headers: { x: 1 } }] }
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:1: defaults.budgetMs: 300 ms must stay below envoy.messageTimeoutMs (200 ms), or Envoy gives up before gatehouse answers',
    'c.yaml:3: routes[0] (id "a"): budgetMs: must be a number, got the string "fast"',
    'c.yaml:4: routes[1] (id "a"): filters[1].headers.x: unknown key; allowed here: request, response',
    'c.yaml:4: routes[1] (id "a"): id: duplicate route id "a" (also routes[0])',
    'c.yaml:4: routes[1] (id "a"): filters[1]: filter "headers" is listed twice (also filters[0]); a route runs each filter once',
  ]);
});

test('bad listen addresses are errors that show the expected form', () => {
  const errors = errorsOf(parseConfig('listen: { grpc: "9001", admin: "::1:9002" }\n' + ROUTE, 'c.yaml'));
  assert.deepEqual(errors, [
    'c.yaml:1: listen.grpc: must be host:port (e.g. 0.0.0.0:9001 or [::]:9001): no port, got "9001"',
    'c.yaml:1: listen.admin: must be host:port (e.g. 0.0.0.0:9001 or [::]:9001): an IPv6 host must be in brackets, got "::1:9002"',
  ]);
  assert.match(errorsOf(parseConfig('listen: { grpc: "0.0.0.0:70000" }\n' + ROUTE, 'c.yaml'))[0]!, /the port is above 65535/);
});

test('YAML syntax errors carry the line', () => {
  const errors = errorsOf(parseConfig('listen:\n  grpc: "0.0.0.0:1"\nroutes: [\n  - id: a\n', 'c.yaml'));
  assert.equal(errors.length >= 1, true);
  assert.match(errors[0]!, /^c\.yaml:\d+: YAML syntax error: /);
  const dup = errorsOf(parseConfig('unmatched: deny\nunmatched: pass\n', 'c.yaml'));
  assert.deepEqual(dup, ['c.yaml:2: YAML syntax error: Map keys must be unique']);
});

test('an empty file, a non-map file and a missing file are errors, not crashes', () => {
  assert.deepEqual(errorsOf(parseConfig('', 'c.yaml')), ['c.yaml: the file is empty; expected a map with listen, routes, ...']);
  assert.deepEqual(errorsOf(parseConfig('- a\n- b\n', 'c.yaml')), ['c.yaml:1: the top level must be a map (listen, tls, unmatched, pathPolicy, defaults, envoy, telemetry, shutdown, stores, mtls, securityEvents, admin, routes)']);
  assert.match(errorsOf(loadConfigFile('/nonexistent/gatehouse.yaml'))[0]!, /^\/nonexistent\/gatehouse\.yaml: cannot read the file: ENOENT/);
});

test('path kinds: exactly one, canonical, and no "?" or "*" where they would mislead', () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - { id: a, match: { path: {} } }
  - { id: b, match: { path: { exact: /a, prefix: /b } } }
  - { id: c, match: { path: { exact: "/a/../b" } } }
  - { id: d, match: { path: { prefix: "/a?x=1" } } }
  - { id: e, match: { path: { prefix: "/a/*" } } }
  - { id: f, match: { path: { template: "/a/b" } } }
  - { id: g, match: { path: { exact: "/a%41" } } }
  - { id: h, match: { path: { template: "/a/:id/*" } } }
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:2: routes[0] (id "a"): match.path: needs one of: exact, prefix, template, regex',
    'c.yaml:3: routes[1] (id "b"): match.path: needs exactly one of exact, prefix, template, regex, got exact and prefix',
    'c.yaml:4: routes[2] (id "c"): match.path.exact: must be written in canonical form (decoded, no "." or ".." or empty segments), i.e. "/b"; requests are matched after the same normalization',
    'c.yaml:5: routes[3] (id "d"): match.path.prefix: must not contain "?" (match query parameters with match.query)',
    'c.yaml:6: routes[4] (id "e"): match.path.prefix: must not contain "*" (a prefix already matches everything after it; use regex for more)',
    'c.yaml:7: routes[5] (id "f"): match.path.template: has no ":param"; use an exact path',
    'c.yaml:8: routes[6] (id "g"): match.path.exact: must be written in canonical form (decoded, no "." or ".." or empty segments), i.e. "/aA"; requests are matched after the same normalization',
    'c.yaml:9: routes[7] (id "h"): match.path.template: must not contain "*" (use a prefix path for "everything below")',
  ]);
});

test('two templates of one shape with different parameter names are refused', () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - { id: a, match: { path: { template: "/v1/x/:id" } } }
  - { id: b, match: { path: { template: "/v1/x/:key" } } }
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:3: routes[1] (id "b"): match.path.template: has the same shape as routes[0]\'s template "/v1/x/:id"; routes on one path shape must use the same template text (parameter names included)',
  ]);
});

test('hosts with a port and predicates with two conditions are errors', () => {
  const errors = errorsOf(
    parseConfig(
      `routes:
  - id: a
    match:
      path: { prefix: / }
      hosts: ["api.example.com:443", "bad host"]
      headers: [{ name: x, exact: "1", present: true }, { name: "x y", present: true }]
      query: [{ name: q }]
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:5: routes[0] (id "a"): match.hosts[0]: must not include a port (ports are ignored when matching), got "api.example.com:443"',
    'c.yaml:5: routes[0] (id "a"): match.hosts[1]: must be a host name, "*.suffix" or "*", got "bad host"',
    'c.yaml:6: routes[0] (id "a"): match.headers[0]: needs exactly one of exact, prefix, regex, present, got exact and present',
    'c.yaml:6: routes[0] (id "a"): match.headers[1].name: must be an HTTP header name (token characters)',
    'c.yaml:7: routes[0] (id "a"): match.query[0]: needs one of: exact, prefix, regex, present',
  ]);
});

test("budgets must stay below Envoy's message timeout", () => {
  const errors = errorsOf(
    parseConfig(
      `defaults: { budgetMs: 200 }
routes:
  - { id: a, match: { path: { exact: /a } }, budgetMs: 250 }
`,
      'c.yaml',
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:1: defaults.budgetMs: 200 ms must stay below envoy.messageTimeoutMs (200 ms), or Envoy gives up before gatehouse answers',
    'c.yaml:3: routes[0] (id "a"): budgetMs: 250 ms must stay below envoy.messageTimeoutMs (200 ms), or Envoy gives up before gatehouse answers',
  ]);
  valid('envoy: { messageTimeoutMs: 500 }\ndefaults: { budgetMs: 400 }\n' + ROUTE);
});

test('warnings: no routes at all, and a regex route shadowed by a catch-all prefix', () => {
  const empty = parseConfig('unmatched: deny\n', 'c.yaml');
  assert.ok(empty.ok);
  assert.deepEqual(
    empty.warnings.map((w) => w.format()),
    ['c.yaml: routes: no routes: every request is denied (unmatched: deny)'],
  );
  const shadowed = parseConfig(
    `routes:
  - { id: all, match: { path: { prefix: / } } }
  - { id: legacy, match: { path: { regex: "/legacy/[0-9]+" } } }
`,
    'c.yaml',
  );
  assert.ok(shadowed.ok);
  assert.deepEqual(
    shadowed.warnings.map((w) => w.format()),
    ['c.yaml:3: routes[1] (id "legacy"): match.path.regex: can never match: regex paths are tried after prefixes, and routes[0] (prefix "/" with no other predicates) takes every request first'],
  );
});

test('a warning names a route hidden by an earlier route on the same path without predicates', () => {
  const result = parseConfig(
    `routes:
  - { id: api, match: { path: { prefix: /api/ } } }
  - { id: api-admin, match: { path: { prefix: /api/ }, hosts: [admin.example.com] } }
  - { id: api-get, match: { path: { prefix: /api/ }, methods: [GET] } }
  - { id: other, match: { path: { exact: /api/ } } }
`,
    'c.yaml',
  );
  assert.ok(result.ok);
  assert.deepEqual(
    result.warnings.map((w) => w.format()),
    [
      'c.yaml:3: routes[1] (id "api-admin"): match.path: can never match: routes[0] has the same path and no other predicates, and routes on one path are tried in config order',
      'c.yaml:4: routes[2] (id "api-get"): match.path: can never match: routes[0] has the same path and no other predicates, and routes on one path are tried in config order',
    ],
  );
});

test('relative TLS paths resolve against the config file directory', () => {
  const config = valid('tls: { certFile: certs/tls.crt, keyFile: /abs/tls.key }\n' + ROUTE, '/etc/gatehouse/config.yaml');
  assert.deepEqual({ ...config.tls }, { certFile: '/etc/gatehouse/certs/tls.crt', keyFile: '/abs/tls.key' });
});

test('env overrides win over the file and report what they changed', () => {
  const config = valid(ROUTE);
  const result = applyEnv(config, {
    GATEHOUSE_GRPC_LISTEN: '127.0.0.1:7001',
    GATEHOUSE_ADMIN_LISTEN: '[::]:7002',
    GATEHOUSE_LOG_LEVEL: 'debug',
    GATEHOUSE_OTLP_ENDPOINT: 'https://otel.example.com/v1/traces',
    GATEHOUSE_UNMATCHED: 'pass',
    GATEHOUSE_TLS_CERT_FILE: '/run/tls/tls.crt',
    GATEHOUSE_TLS_KEY_FILE: '/run/tls/tls.key',
    GATEHOUSE_TLS_CA_FILE: '',
  });
  assert.ok(result.ok);
  assert.equal(result.config.listen.grpc.address, '127.0.0.1:7001');
  assert.equal(result.config.listen.admin.address, '[::]:7002');
  assert.equal(result.config.telemetry.logLevel, 'debug');
  assert.equal(result.config.telemetry.otlpEndpoint, 'https://otel.example.com/v1/traces');
  assert.equal(result.config.unmatched, 'pass');
  assert.deepEqual({ ...result.config.tls }, { certFile: '/run/tls/tls.crt', keyFile: '/run/tls/tls.key' });
  assert.deepEqual(result.applied, [
    'GATEHOUSE_GRPC_LISTEN',
    'GATEHOUSE_ADMIN_LISTEN',
    'GATEHOUSE_LOG_LEVEL',
    'GATEHOUSE_OTLP_ENDPOINT',
    'GATEHOUSE_UNMATCHED',
    'GATEHOUSE_TLS_CERT_FILE',
    'GATEHOUSE_TLS_KEY_FILE',
  ]);
  assert.ok(Object.isFrozen(result.config));
  assert.equal(config.unmatched, 'deny', 'the input config is untouched');
  const none = applyEnv(config, {});
  assert.ok(none.ok && none.config === config && none.applied.length === 0);
});

test('invalid env values are errors naming the variable', () => {
  const errors = errorsOf(
    applyEnv(valid(ROUTE), {
      GATEHOUSE_GRPC_LISTEN: 'nope',
      GATEHOUSE_LOG_LEVEL: 'loud',
      GATEHOUSE_OTLP_ENDPOINT: 'ftp://x',
      GATEHOUSE_UNMATCHED: 'allow',
      GATEHOUSE_TLS_CERT_FILE: '/a.crt',
    }),
  );
  assert.deepEqual(errors, [
    'environment: GATEHOUSE_GRPC_LISTEN: must be host:port (e.g. 0.0.0.0:9001 or [::]:9001): no port, got "nope"',
    'environment: GATEHOUSE_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    'environment: GATEHOUSE_OTLP_ENDPOINT: must be an http(s) URL, got "ftp://x"',
    'environment: GATEHOUSE_UNMATCHED: must be deny or pass, got "allow"',
    'environment: GATEHOUSE_TLS_KEY_FILE: must be set too: the config file has no tls section, and GATEHOUSE_TLS_CERT_FILE alone does not enable TLS',
  ]);
});

test('loadConfig uses GATEHOUSE_CONFIG, applies env, and checks that TLS files are readable', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, 'tls: { certFile: tls.crt, keyFile: tls.key }\n' + ROUTE);
  writeFileSync(join(dir, 'tls.crt'), 'x');
  const missing = loadConfig({ env: { GATEHOUSE_CONFIG: file } });
  assert.ok(!missing.ok);
  assert.deepEqual(missing.errors.map((e) => e.format()), [`${file}: tls.keyFile: cannot read ${JSON.stringify(join(dir, 'tls.key'))}: ENOENT`]);
  const fromEnv = loadConfig({ env: { GATEHOUSE_CONFIG: file, GATEHOUSE_TLS_KEY_FILE: join(dir, 'other.key') } });
  assert.ok(!fromEnv.ok);
  assert.deepEqual(fromEnv.errors.map((e) => e.format()), [`environment: GATEHOUSE_TLS_KEY_FILE: cannot read ${JSON.stringify(join(dir, 'other.key'))}: ENOENT`]);
  writeFileSync(join(dir, 'tls.key'), 'x');
  const good = loadConfig({ env: { GATEHOUSE_CONFIG: file, GATEHOUSE_UNMATCHED: 'pass' } });
  assert.ok(good.ok);
  assert.equal(good.embeddedDefault, false);
  assert.equal(good.file, file);
  assert.deepEqual(good.envOverrides, ['GATEHOUSE_UNMATCHED']);
  assert.equal(good.config.unmatched, 'pass');
});

test('without GATEHOUSE_CONFIG the embedded dev default loads, says so, and listens on loopback', () => {
  const result = loadConfig({ env: {} });
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  assert.equal(result.embeddedDefault, true);
  assert.equal(result.file, defaultConfigPath());
  assert.match(result.file, /config\/gatehouse\.dev\.yaml$/);
  assert.equal(result.config.listen.grpc.address, '127.0.0.1:9001');
  assert.equal(result.config.listen.admin.address, '127.0.0.1:9002');
  assert.deepEqual(result.warnings, []);
  assert.ok(result.config.routes.some((r) => r.match.path.kind === 'template'));
  assert.ok(result.config.routes.some((r) => r.match.path.kind === 'prefix' && r.filters.some((f) => f.name === 'headers')));
});

test('the package root (and so the embedded default) is found from src/ and from a dist/ build alike', () => {
  const root = findPackageRoot();
  assert.equal(findPackageRoot(join(root, 'dist', 'src', 'config')), root);
  assert.equal(findPackageRoot(join(root, 'src', 'config')), root);
  assert.equal(defaultConfigPath(), join(root, 'config', 'gatehouse.dev.yaml'));
});

test('YAML anchors and merge keys inside routes share settings between routes', () => {
  const config = valid(`
routes:
  - &first { id: a, match: { path: { exact: /a } }, budgetMs: 90, filters: [{ headers: { request: { set: { x-gateway: gatehouse } } } }] }
  - { <<: *first, id: b, match: { path: { exact: /b } } }
`);
  assert.equal(config.routes[1]!.budgetMs, 90);
  assert.deepEqual(config.routes[1]!.filters, config.routes[0]!.filters);
});

test("a file a filter's config names is found relative to the config file, whatever the working directory", () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-relative-'));
  try {
    writeFileSync(join(dir, 'gateway.key'), readFileSync(join(findPackageRoot(), 'config', 'e2ee-gateway-7.dev-only.key')));
    const yaml = 'routes:\n  - id: keys\n    match: { path: { exact: /keys } }\n    filters:\n      - e2eeKeys: { keys: [{ keyId: 7, privateKeyFile: gateway.key }] }\n';
    writeFileSync(join(dir, 'gatehouse.yaml'), yaml);
    assert.notEqual(process.cwd(), dir);
    const loaded = loadConfigFile(join(dir, 'gatehouse.yaml'));
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.map((e) => e.format()).join('\n'));
    const table = buildRouteTable(loaded.config, { registry: FILTER_REGISTRY, deps: createFilterDeps() });
    assert.ok(table.ok, table.ok ? '' : table.errors.map((e) => e.format()).join('\n'));
    const missing = parseConfig(yaml, join(dir, 'elsewhere', 'gatehouse.yaml'));
    assert.ok(!missing.ok);
    assert.match(missing.errors.map((e) => e.format()).join('\n'), new RegExp(`privateKeyFile: .*${join(dir, 'elsewhere', 'gateway.key').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GATEHOUSE_CONFIG unset where no embedded default exists (a production image) is said so, not an ENOENT', () => {
  const missing = '/nonexistent/gatehouse.dev.yaml';
  assert.match(configNotSet({}, missing) ?? '', /^GATEHOUSE_CONFIG is not set: set it to your config file/);
  assert.match(configNotSet({ GATEHOUSE_CONFIG: '' }, missing) ?? '', /^GATEHOUSE_CONFIG is not set/);
  assert.equal(configNotSet({ GATEHOUSE_CONFIG: '/etc/gatehouse/gatehouse.yaml' }, missing), undefined, 'a named file is loaded (and reported) as usual');
  assert.equal(configNotSet({}, defaultConfigPath()), undefined, 'the repository has its embedded default');
});

test('lookaround is refused on every Node version (Node 22\'s V8 runs some lookbehinds in linear time; RE2 runs none), and a look-alike is not', () => {
  for (const source of ['(?<!a)b', '(?<=a)b', 'a(?=b)', 'a(?!b)', 'x|(?<!\\\\)y']) assert.equal(hasLookaround(source), true, source);
  for (const source of ['(?<name>a)', '[(?=]x', '\\(?=x', '(?:a)', 'a\\(?!b']) assert.equal(hasLookaround(source), false, source);
});
