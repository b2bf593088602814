// Renders deploy/helm/gatehouse without a helm binary: deploy/helm/renderer is our own small Go
// program implementing Helm's template environment (text/template + Sprig, include/tpl/required/
// toYaml/fromYaml, .Values/.Release/.Chart/.Capabilities/.Files), built offline with Debian's
// golang-go and golang-github-masterminds-sprig-dev and cached under .cache/ (gitignored) by the
// hash of its source.
//
// `npx tsx test/support/helm.ts --write` re-renders the checked-in outputs (deploy/kubernetes/,
// deploy/istio/envoyfilter-ext-proc.yaml) from the chart's defaults; a test fails when they drift.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { findPackageRoot } from '../../src/config/load.js';
import { skipUnlessCi } from './requires.js';

const ROOT = findPackageRoot();
export const CHART_DIR = join(ROOT, 'deploy/helm/gatehouse');
export const SCENARIOS_DIR = join(CHART_DIR, 'scenarios');
const RENDERER_SRC = join(ROOT, 'deploy/helm/renderer/main.go');
const GOPATH = '/usr/share/gocode';
const SPRIG = join(GOPATH, 'src/github.com/Masterminds/sprig');
const GO = '/usr/bin/go';

/** The release every checked-in rendering uses. */
export const RELEASE = { name: 'gatehouse', namespace: 'gatehouse' } as const;

/** `skip` option for tests that render the chart (Debian: golang-go, golang-github-masterminds-sprig-dev) */
export function skipWithoutGo(): false | string {
  return skipUnlessCi(existsSync(GO) && existsSync(SPRIG), 'golang-go or golang-github-masterminds-sprig-dev not installed');
}

/** The renderer binary, built once per source version (offline: GOPATH mode, Debian's packages). */
export function rendererBinary(): string {
  const hash = createHash('sha256').update(readFileSync(RENDERER_SRC)).digest('hex').slice(0, 16);
  const dir = join(ROOT, '.cache/helm-renderer', hash);
  const bin = join(dir, 'renderer');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  execFileSync(GO, ['build', '-o', tmp, '.'], {
    cwd: join(ROOT, 'deploy/helm/renderer'),
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(ROOT, '.cache/go-build'), GOFLAGS: '', GOPROXY: 'off', CGO_ENABLED: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  renameSync(tmp, bin); // atomic: two test files building at once both end with a whole binary
  return bin;
}

export interface RenderOptions {
  readonly name?: string;
  readonly namespace?: string;
  readonly notes?: boolean;
}

/** `helm template` of the chart with these values files (paths), as text. Throws with the renderer's error. */
export function renderChart(valuesFiles: readonly string[] = [], options: RenderOptions = {}): string {
  const args = ['-chart', CHART_DIR, '-name', options.name ?? RELEASE.name, '-namespace', options.namespace ?? RELEASE.namespace];
  for (const f of valuesFiles) args.push('-f', f);
  if (options.notes) args.push('-notes');
  try {
    return execFileSync(rendererBinary(), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr;
    throw new Error(`chart render failed: ${stderr ?? String(err)}`, { cause: err });
  }
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The objects of a YAML stream, each with the source file text it came from. */
export function yamlObjects(text: string, what = 'rendered chart'): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${what}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) out.push(value);
  }
  return out;
}

/** The rendered stream cut to the documents whose object satisfies `keep`, comments kept. */
export function selectDocuments(text: string, keep: (o: K8sObject) => boolean): string {
  const docs = text.split(/^---\n/m).filter((d) => d.trim() !== '');
  return docs
    .filter((d) => {
      const o = yamlObjects(d)[0];
      return o !== undefined && keep(o);
    })
    .map((d) => `---\n${d}`)
    .join('');
}

const GENERATED_NOTE = '# Generated from deploy/helm/gatehouse with its default values (release gatehouse, namespace\n# gatehouse): do not edit; change the chart and run `npx tsx test/support/helm.ts --write`.\n';

/** What deploy/kubernetes/gatehouse.yaml and deploy/istio/envoyfilter-ext-proc.yaml must contain. */
export function checkedInRenderings(): Map<string, string> {
  const text = renderChart();
  const isFilter = (o: K8sObject): boolean => o.kind === 'EnvoyFilter';
  return new Map([
    [join(ROOT, 'deploy/kubernetes/gatehouse.yaml'), GENERATED_NOTE + selectDocuments(text, (o) => !isFilter(o))],
    [join(ROOT, 'deploy/istio/envoyfilter-ext-proc.yaml'), GENERATED_NOTE + selectDocuments(text, isFilter)],
  ]);
}

/** values.schema.json as it must be: its `config` is config/gatehouse.schema.json, embedded. */
export function expectedValuesSchema(): Record<string, unknown> {
  const committed = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as { properties: Record<string, unknown> };
  const { $schema: _ignored, ...config } = JSON.parse(readFileSync(join(ROOT, 'config/gatehouse.schema.json'), 'utf8')) as Record<string, unknown>;
  return { ...committed, properties: { ...committed.properties, config } };
}

type Values = Record<string, unknown>;
const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's merge of user values onto the chart's: maps key by key, anything else replaces, null deletes. */
export function mergeValues(base: Values, override: Values): Values {
  const out = new Map(Object.entries(base));
  for (const [k, v] of Object.entries(override)) {
    const current = out.get(k);
    if (v === null) out.delete(k);
    else if (isMap(current) && isMap(v)) out.set(k, mergeValues(current, v));
    else out.set(k, v);
  }
  return Object.fromEntries(out);
}

/** The values a render with these files sees (values.yaml, then each file). */
export function chartValues(valuesFiles: readonly string[] = []): Values {
  return [join(CHART_DIR, 'values.yaml'), ...valuesFiles].map((f) => (parse(readFileSync(f, 'utf8')) ?? {}) as Values).reduce(mergeValues, {});
}

if (process.argv[1]?.endsWith('helm.ts') && process.argv.includes('--write')) {
  for (const [file, text] of checkedInRenderings()) {
    writeFileSync(file, text);
    console.log(`wrote ${file}`);
  }
  writeFileSync(join(CHART_DIR, 'values.schema.json'), `${JSON.stringify(expectedValuesSchema(), null, 2)}\n`);
  console.log('wrote values.schema.json');
}
