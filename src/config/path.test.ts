import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalizePath } from './path.js';

const ok = (raw: string) => {
  const r = canonicalizePath(raw);
  assert.ok(r.ok, `expected ${raw} to be accepted, got ${r.ok ? '' : r.reason}`);
  return r;
};
const refused = (raw: string) => {
  const r = canonicalizePath(raw);
  assert.ok(!r.ok, `expected ${raw} to be refused`);
  return r.reason;
};

test('a plain path is its own canonical form, with no copy made', () => {
  const raw = '/v1/accounts/me';
  const r = ok(raw);
  assert.equal(r.path, raw);
  assert.equal(r.routerPath, raw);
});

test('percent-escapes are decoded, so an encoded letter cannot dodge an exact route', () => {
  assert.equal(ok('/v1/transf%65r').path, '/v1/transfer');
  assert.equal(ok('/caf%C3%A9').path, '/café');
});

test('dot segments are resolved and empty segments merged, raw or percent-encoded', () => {
  assert.equal(ok('/public/../admin').path, '/admin');
  assert.equal(ok('/public/%2e%2e/admin').path, '/admin');
  assert.equal(ok('/public/%2E%2E/admin').path, '/admin');
  assert.equal(ok('/a/./b/').path, '/a/b/');
  assert.equal(ok('//a//b').path, '/a/b');
  assert.equal(ok('/../../etc').path, '/etc');
  assert.equal(ok('/a/..').path, '/');
  assert.equal(ok('/a/b/..').path, '/a/');
  assert.equal(ok('/a/.hidden').path, '/a/.hidden');
});

test('reserved characters decoded from escapes are re-encoded for the router, so it neither splits nor double-decodes', () => {
  const r = ok('/files/a%3Fb%23c%25d');
  assert.equal(r.path, '/files/a?b#c%d');
  assert.equal(r.routerPath, '/files/a%3Fb%23c%25d');
});

test('ambiguous or malformed paths are refused with a reason', () => {
  assert.match(refused('/a%2Fb'), /encoded "\/"/);
  assert.match(refused('/a%2fb'), /encoded "\/"/);
  assert.match(refused('/a%5Cb'), /encoded "\/" or "\\"/);
  assert.match(refused('/a\\b'), /backslash/);
  assert.match(refused('/a%00b'), /control/);
  assert.match(refused('/a\tb'), /control/);
  assert.equal(ok('/a%20b').path, '/a b');
  assert.match(refused('/a%zz'), /malformed percent-escape/);
  assert.match(refused('/a%4'), /malformed percent-escape/);
  assert.match(refused('/a%C3'), /UTF-8/);
  assert.match(refused('/a#frag'), /"#"/);
  assert.match(refused('*'), /does not start with/);
  assert.match(refused('http://x/a'), /does not start with/);
});

test('canonicalization is idempotent and never yields dot segments, empty segments or an encoded slash', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom('a', 'b', '.', '..', '', '%2e', '%2E%2e', 'x%20y', '%41', '%3F', '%25', 'é'), { maxLength: 8 }), (segments) => {
      const raw = `/${segments.join('/')}`;
      const r = canonicalizePath(raw);
      if (!r.ok) return;
      const again = canonicalizePath(r.path.split('/').map(encodeURIComponent).join('/'));
      assert.ok(again.ok);
      assert.equal(again.path, r.path);
      const inner = r.path.split('/').slice(1, -1);
      for (const s of inner) assert.ok(s !== '' && s !== '.' && s !== '..', `bad segment in ${r.path} from ${raw}`);
    }),
  );
});
