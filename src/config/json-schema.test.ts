import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FILTER_REGISTRY } from '../filters/registry.js';
import { configJsonSchema, configJsonSchemaText } from './json-schema.js';
import { findPackageRoot } from './load.js';

test('config/gatehouse.schema.json is up to date with the zod schema (regenerate: npx tsx src/config-json-schema.ts > config/gatehouse.schema.json)', () => {
  const committed = readFileSync(join(findPackageRoot(), 'config', 'gatehouse.schema.json'), 'utf8');
  assert.equal(committed, configJsonSchemaText(FILTER_REGISTRY));
});

test('the JSON Schema is strict and describes filter entries by their own schemas', () => {
  const schema = configJsonSchema(FILTER_REGISTRY) as {
    additionalProperties: unknown;
    properties: { routes: { items: { additionalProperties: unknown; properties: { filters: { items: { oneOf: { required: string[]; additionalProperties: unknown }[] } } } } } };
  };
  assert.equal(schema.additionalProperties, false);
  const route = schema.properties.routes.items;
  assert.equal(route.additionalProperties, false);
  const entries = route.properties.filters.items.oneOf;
  assert.deepEqual(
    entries.map((e) => e.required),
    [['breaker'], ['e2ee'], ['e2eeKeys'], ['headers'], ['issuance'], ['mtls'], ['passport'], ['passportKeys'], ['sanitize'], ['signed']],
  );
  assert.ok(entries.every((e) => e.additionalProperties === false));
});
