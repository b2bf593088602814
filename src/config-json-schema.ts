// Prints the config file's JSON Schema for gatehouse's own filters (config/json-schema.ts builds it):
//   npx tsx src/config-json-schema.ts > config/gatehouse.schema.json
import { configJsonSchemaText } from './config/json-schema.js';
import { FILTER_REGISTRY } from './filters/registry.js';

process.stdout.write(configJsonSchemaText(FILTER_REGISTRY));
