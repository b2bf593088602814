import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalizePath, canonicalSegment, pathVariant } from './path.js';

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

test('matrix parameters are cut from every segment before decoding, as Tomcat and Spring route', () => {
  assert.equal(ok('/api/v1/transfers;jsessionid=x').path, '/api/v1/transfers');
  assert.equal(ok('/a;x=1/b;y').path, '/a/b');
  assert.equal(ok('/public/..;/admin').path, '/admin');
  assert.equal(ok('/a/;x/b').path, '/a/b');
  assert.equal(ok('/a%3Bb').path, '/a;b', 'an encoded ";" is part of its segment');
});

test('pathVariant folds trailing slash, trailing dots, the last .suffix and case; nothing to fold gives undefined', () => {
  const v = (raw: string) => {
    const r = ok(raw);
    return pathVariant(r.path, r.routerPath);
  };
  assert.equal(v('/api/v1/transfers'), undefined);
  assert.equal(ok('/api/v1/transfers').variant, false, 'the common case is flagged as having nothing to fold');
  assert.deepEqual(v('/api/v1/transfers/'), { path: '/api/v1/transfers', routerPath: '/api/v1/transfers', key: '/api/v1/transfers', trailingSlash: true, suffix: false });
  assert.deepEqual(v('/api/v1/Transfers'), { path: '/api/v1/Transfers', routerPath: '/api/v1/Transfers', key: '/api/v1/transfers', trailingSlash: false, suffix: false });
  assert.equal(v('/api/v1/transfers%2e')?.key, '/api/v1/transfers');
  assert.equal(v('/api/v1/transfers%2e')?.suffix, true);
  assert.equal(v('/api/v1./transfers')?.key, '/api/v1/transfers');
  assert.equal(v('/api/v1/transfers.json')?.key, '/api/v1/transfers');
  assert.equal(v('/a/b.c.d/')?.key, '/a/b');
  assert.equal(v('/a/.../b'), undefined, 'a segment of dots only is left alone');
  assert.equal(v('/'), undefined);
  assert.equal(ok('/%C3%89t%C3%A9').variant, true, 'non-ASCII upper case counts');
});

test('canonicalSegment: the form breaker features and other path keys compare', () => {
  assert.equal(canonicalSegment('Transfers'), 'transfers');
  assert.equal(canonicalSegment('transfers;jsessionid=1'), 'transfers');
  assert.equal(canonicalSegment('transfers.'), 'transfers');
  assert.equal(canonicalSegment('cards'), 'cards');
});
