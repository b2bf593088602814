// Rewrites the generated sections of docs/protocol/passport.md (the worked example and the failure
// table) from the code:   npx tsx src/protocol/passport/gen-doc.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { regenerate } from './worked-example.js';

export const PASSPORT_DOC = fileURLToPath(new URL('../../../docs/protocol/passport.md', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(PASSPORT_DOC, regenerate(readFileSync(PASSPORT_DOC, 'utf8')));
}
