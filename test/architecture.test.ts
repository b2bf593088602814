// The layers of src/ (docs/architecture.md), checked on the import statements themselves: no module
// may import a layer above its own, no import cycle anywhere, no filter imports another filter or
// security/, and only the composition root names the filter registry.
//
// Type-only imports count like any other: `import type` still ties a module to what it names (a
// change there breaks the importer), and the cycle this test was written against ran partly through
// `import type` (pipeline/types.ts → filters/). Tests and benches are left out: nothing imports
// them, so they cannot close a cycle, and a test may reach up to wire what it tests.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'src');

/** bottom to top; a module may import its own layer or one below */
const LAYERS: readonly (readonly string[])[] = [
  ['protocol', 'gen'],
  ['pipeline'],
  ['stores', 'telemetry', 'security', 'admin'],
  ['filters'],
  ['config'],
  ['envoy'],
  ['(root)'],
];

/**
 * Modules that sit below their directory's layer. stores/types.ts holds the store interfaces (ports)
 * that FilterDeps names; it imports only protocol/, so the pipeline may name it while the stores'
 * implementations stay above.
 */
const PLACED: ReadonlyMap<string, string> = new Map([['stores/types.ts', 'pipeline']]);

function isProductionModule(file: string): boolean {
  return file.endsWith('.ts') && !file.endsWith('.d.ts') && !file.endsWith('.test.ts') && !file.endsWith('.bench.ts');
}

function listModules(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listModules(path));
    else if (isProductionModule(entry.name)) out.push(relative(src, path));
  }
  return out;
}

/** every module specifier a file names: import, import type, export … from, import() */
function specifiers(file: string): string[] {
  const text = readFileSync(join(src, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      out.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** the src-relative module a relative specifier names (`.js` in the source means the `.ts` beside it) */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return relative(src, resolve(join(src, dirname(from)), specifier)).replace(/\.js$/, '.ts');
}

function topDir(module: string): string {
  return module.includes('/') ? module.slice(0, module.indexOf('/')) : '(root)';
}

function layerOf(module: string): number {
  const dir = PLACED.get(module) ?? topDir(module);
  return LAYERS.findIndex((layer) => layer.includes(dir));
}

/** `filters/<name>/…` → name; filters/*.ts (registry, shared helpers) → undefined */
function filterOf(module: string): string | undefined {
  const parts = module.split('/');
  return parts[0] === 'filters' && parts.length > 2 ? parts[1] : undefined;
}

const modules = listModules(src).filter((m) => !m.startsWith('gen/'));
const graph = new Map<string, string[]>(
  modules.map((m) => [m, specifiers(m).flatMap((s) => resolveSpecifier(m, s) ?? []).filter((target) => !target.startsWith('..'))]),
);

test('every directory of src/ has a layer', () => {
  const unplaced = [...new Set(modules.map(topDir))].filter((dir) => layerOf(`${dir}/x.ts`) === -1 && dir !== '(root)');
  assert.deepEqual(unplaced, [], 'add the directory to LAYERS here and to docs/architecture.md');
});

test('no module imports a layer above its own', () => {
  const upward: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      if (layerOf(to) > layerOf(from)) upward.push(`${from} → ${to}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('no filter imports another filter, security/, or the registry', () => {
  const wrong: string[] = [];
  for (const [from, targets] of graph) {
    const own = filterOf(from);
    if (own === undefined) continue;
    for (const to of targets) {
      const other = filterOf(to);
      if ((other !== undefined && other !== own) || topDir(to) === 'security' || to === 'filters/registry.ts') wrong.push(`${from} → ${to}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('only the composition root (src/*.ts) names the filter registry: config/ receives it as a parameter', () => {
  const importers = [...graph].filter(([, targets]) => targets.includes('filters/registry.ts')).map(([from]) => from);
  assert.deepEqual(importers.filter((m) => topDir(m) !== '(root)'), []);
});

test('no import cycle in src/', () => {
  // Tarjan's strongly connected components: any component of more than one module is a cycle
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  assert.deepEqual(cycles, []);
});

test('the checker sees imports: a known edge of each kind is in the graph', () => {
  // guards against a parser change that would make every test above pass on an empty graph
  assert.ok(graph.get('gatehouse.ts')?.includes('server.ts'), 'a value import');
  assert.ok(graph.get('envoy/extproc.ts')?.includes('pipeline/types.ts'), 'an import type');
  assert.ok(modules.length > 50, `only ${modules.length} modules found`);
});

test('only envoy/ names the generated protobuf code (gen/): the rest of gatehouse never sees protobuf', () => {
  const outside = [...graph].flatMap(([from, targets]) => (topDir(from) !== 'envoy' && topDir(from) !== 'gen' ? targets.filter((to) => topDir(to) === 'gen').map((to) => `${from} → ${to}`) : []));
  assert.deepEqual(outside, []);
});

test('the image build (tsconfig.image.json) compiles no test helper or worked-example generator', () => {
  // tsc compiles an excluded file anyway when an included one imports it: ask tsc what it compiles
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.image.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); } });
  assert.ok(config);
  const program = ts.createProgram({ rootNames: config.fileNames, options: { ...config.options, noEmit: true } });
  const compiled = program.getSourceFiles().map((f) => relative(root, f.fileName)).filter((f) => !f.startsWith('node_modules') && !f.startsWith('..'));
  assert.ok(compiled.includes('src/main.ts'), 'the image has the service');
  const helpers = compiled.filter((f) => /test-support|\/testing\.ts$|\/fixtures\.ts$|test-devices|worked-example|gen-doc|\.test\.ts$|^test\/|^bench\/|^demo\//.test(f));
  assert.deepEqual(helpers, []);
});
