// The config file's JSON Schema, generated from the zod schema (and each filter's own schema) so
// that editors can complete and check a config (yaml-language-server) and a Helm chart can validate
// values. config/gatehouse.schema.json is its committed output; a test fails when it drifts.
// Regenerate: npx tsx src/config-json-schema.ts > config/gatehouse.schema.json
// Checks the JSON Schema cannot express (canonical paths, regex syntax, duplicate ids, budgets
// against the Envoy timeout) stay with the loader, which remains the authority.
import { z } from 'zod';
import type { FilterDefinition } from '../pipeline/types.js';
import { buildConfigSchema } from './schema.js';

type Json = Record<string, unknown>;

function toJson(schema: z.ZodType): Json {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  delete out.$schema;
  return out;
}

function at(node: Json, ...keys: string[]): Json {
  let current: Json = node;
  for (const key of keys) {
    const next = current[key];
    if (next === null || typeof next !== 'object') throw new Error(`JSON Schema has no ${keys.join('.')}`);
    current = next as Json;
  }
  return current;
}

export function configJsonSchema(registry: ReadonlyMap<string, FilterDefinition>): Json {
  const root: Json = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'gatehouse configuration',
    description: 'See docs/config.md. The loader also checks what this schema cannot express.',
    ...toJson(buildConfigSchema(registry, { configDir: undefined })),
  };
  // a filter entry is a one-key map: the filter's name → that filter's own config schema
  const route = at(root, 'properties', 'routes', 'items', 'properties');
  const filters = at(route, 'filters');
  filters.items = {
    oneOf: [...registry.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((definition) => ({
        type: 'object',
        properties: { [definition.name]: { anyOf: [toJson(definition.configSchema), { type: 'null' }] } },
        required: [definition.name],
        additionalProperties: false,
      })),
  };
  return root;
}

export function configJsonSchemaText(registry: ReadonlyMap<string, FilterDefinition>): string {
  return `${JSON.stringify(configJsonSchema(registry), null, 2)}\n`;
}
