// `gatehouse --check` (npm run check): the real process validates a config as a start would, without
// listening or connecting, and answers exit 0 with a summary or exit 2 naming the file and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

function check(config: string | undefined, env: Record<string, string> = {}, args: readonly string[] = []): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts'), '--check', ...args], {
    cwd: root,
    env: { ...process.env, GATEHOUSE_CONFIG: config ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function tempConfig(t: { after: (fn: () => void) => void }, text: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-check-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, text);
  return file;
}

const LISTEN = 'listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\n';

test('the embedded default is valid: exit 0, every route with its filters, nothing listens', () => {
  const run = check(undefined);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /is valid \(the embedded development default\)/);
  assert.match(run.stdout, /^ {2}transfers-signed: \/api\/v1\/transfers → sanitize, signed$/m);
  assert.match(run.stdout, /^mtls clients: \d+ in /m);
  assert.doesNotMatch(run.stdout, /listening/, 'no server was started');
});

test('a config a start would refuse: exit 2 with the file and field, for parse errors and for start-time checks', (t) => {
  const badField = tempConfig(t, `${LISTEN}routes:\n  - id: a\n    match: { path: { prefix: / } }\n    filters:\n      - headers: { request: { sett: { x: y } } }\n`);
  const parse = check(badField);
  assert.equal(parse.status, 2);
  assert.ok(parse.stderr.includes(badField), parse.stderr);
  assert.match(parse.stderr, /routes\[0\].*headers/);

  // parses, but the admin token file does not exist: only a start (or --check) reads it
  const noToken = tempConfig(t, `${LISTEN}admin: { tokenFile: missing-token.txt }\nroutes:\n  - id: a\n    match: { path: { prefix: / } }\n`);
  const token = check(noToken);
  assert.equal(token.status, 2, token.stdout);
  assert.match(token.stderr, /admin\.tokenFile: .*missing-token\.txt/);

  // an mtls route without a client registry: the filter cannot be compiled
  const noClients = tempConfig(t, `${LISTEN}routes:\n  - id: partners\n    match: { path: { prefix: /p/ } }\n    filters:\n      - mtls: {}\n`);
  const mtls = check(noClients);
  assert.equal(mtls.status, 2, mtls.stdout);
  assert.match(mtls.stderr, /routes\[0\] \(id "partners"\).*mtls/);
});

test('a valid config of its own: exit 0, with the environment overrides it would start with', (t) => {
  const file = tempConfig(t, `${LISTEN}routes:\n  - id: only\n    match: { path: { prefix: /api/ } }\n    filters:\n      - headers: { request: { set: { x-gateway: gatehouse } } }\n`);
  const run = check(file, { GATEHOUSE_LOG_LEVEL: 'warn' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is valid\\n1 route, unmatched requests: deny`));
  assert.match(run.stdout, /^ {2}only: \/api\/\* → sanitize, headers$/m);
  assert.match(run.stdout, /overridden by the environment: .*GATEHOUSE_LOG_LEVEL/);
});

test('shadowing: the embedded default warns that the api prefix receives variants of the protected routes, and what the path policy does with each', () => {
  const run = check(undefined);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^warning: .*gatehouse\.dev\.yaml: routes\[10\] \(id "api"\): match\.path: receives variants of routes\[4\] \(id "transfers-signed"\)'s path without its signed: \/api\/v1\/transfers\/ \(decided on transfers-signed by the path policy\);.*\/api\/v1\/transfers%2e \(refused 400 path_variant by the path policy\)/m);
  assert.match(run.stdout, /routes\[10\] \(id "api"\).*variants of routes\[6\] \(id "transfers-e2ee"\)/);
});

test('shadowing: pathPolicy.shadowing: refuse makes it an error (exit 2), and a variant no policy covers (a weaker regex route) is named as such', (t) => {
  const routes = `routes:
  - id: transfers
    match: { path: { exact: /api/v1/transfers }, methods: [POST] }
    filters: [{ breaker: {} }]
  - id: api
    match: { path: { prefix: /api/ } }
`;
  const refused = check(tempConfig(t, `${LISTEN}pathPolicy: { shadowing: refuse }\n${routes}`));
  assert.equal(refused.status, 2, refused.stdout);
  assert.match(refused.stderr, /routes\[1\] \(id "api"\): match\.path: receives variants of routes\[0\] \(id "transfers"\)'s path without its breaker/);
  const warned = check(tempConfig(t, `${LISTEN}${routes}`));
  assert.equal(warned.status, 0, warned.stderr);
  assert.match(warned.stdout, /^warning: .*receives variants of routes\[0\]/m);
  // unmatched: pass with no weaker route: the finding is at `unmatched`
  const pass = check(tempConfig(t, `${LISTEN}unmatched: pass\nroutes:\n  - id: transfers\n    match: { path: { exact: /api/v1/transfers } }\n    filters: [{ breaker: {} }]\n`));
  assert.equal(pass.status, 0, pass.stderr);
  assert.match(pass.stdout, /^warning: .*unmatched: unmatched: pass would pass variants of routes\[0\] \(id "transfers"\)'s path without its breaker: \/api\/v1\/transfers\/ \(decided on transfers/m);
  // no variants reach a weaker route: no warning
  const clean = check(tempConfig(t, `${LISTEN}routes:\n  - id: transfers\n    match: { path: { exact: /api/v1/transfers } }\n    filters: [{ breaker: {} }]\n`));
  assert.doesNotMatch(clean.stdout, /warning/);
});

test('--explain prints the route a request lands on, why, its chain and what each filter needs; the path is taken as written', () => {
  const run = check(undefined, {}, ['--explain', 'POST https://api.example.com/api/v1/transfers/']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^ {2}matched by its path: api \(prefix \/api\/\)$/m);
  assert.match(run.stdout, /^ {2}path policy: decided on transfers-signed: route api would skip signed/m);
  assert.match(run.stdout, /^ {2}→ route transfers-signed \(routes\[4\]: exact \/api\/v1\/transfers; methods POST\)/m);
  assert.match(run.stdout, /^ {4}1\. sanitize: needs /m);
  assert.match(run.stdout, /^ {4}2\. signed: needs an RFC 9421 signature/m);
  assert.match(run.stdout, /^ {2}Envoy must send: the request headers, the request body$/m);
  assert.doesNotMatch(run.stdout, /is valid/, 'explain prints the explanation only');

  const refused = check(undefined, {}, ['--explain', 'POST /api/v1/Transfers', '--explain', 'GET /nowhere', '--explain', 'GET /a%2fb']);
  assert.equal(refused.status, 0, refused.stderr);
  assert.match(refused.stdout, /→ refused 400 path_variant: the path differs only in case from route "transfers-signed"'s path/);
  assert.match(refused.stdout, /→ no route: unmatched: deny answers 404 route_not_found/);
  assert.match(refused.stdout, /→ refused 400 bad_request_headers: the path contains an encoded "\/"/);

  const bad = check(undefined, {}, ['--explain', 'not a request']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--explain takes "METHOD https:\/\/host\/path"/);
});
