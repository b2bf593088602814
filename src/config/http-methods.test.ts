// A route's methods must be HTTP methods: `GTE` used to load and silently never match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../test/support/config.js';
import { HTTP_METHODS } from './http-methods.js';

const withMethods = (methods: string): ReturnType<typeof parseConfig> =>
  parseConfig(`routes:\n  - id: a\n    match: { path: { prefix: / }, methods: ${methods} }\n`, 'gatehouse.yaml');

test('a method outside the IANA registry is refused naming the route and field, with the near miss suggested', () => {
  const parsed = withMethods('[POST, GTE]');
  assert.equal(parsed.ok, false);
  const message = parsed.ok ? '' : parsed.errors.map((e) => e.format()).join('\n');
  assert.match(message, /^gatehouse\.yaml:3: routes\[0\] \(id "a"\): match\.methods\[1\]: GTE is not an HTTP method \(IANA HTTP Method Registry\): a route listing it would never match; did you mean GET\?$/);
  // far from any name: no suggestion
  const far = withMethods('[FROBNICATE]');
  assert.equal(far.ok, false);
  const farMessage = far.ok ? '' : far.errors.map((e) => e.format()).join('\n');
  assert.match(farMessage, /FROBNICATE is not an HTTP method/);
  assert.doesNotMatch(farMessage, /did you mean/);
});

test('every registry method loads, in any case, as its upper-case name', () => {
  for (const method of HTTP_METHODS) {
    const parsed = withMethods(`[${method.toLowerCase()}]`);
    assert.ok(parsed.ok, method);
    assert.deepEqual(parsed.config.routes[0]?.match.methods, [method]);
  }
});
