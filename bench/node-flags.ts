/**
 * The V8 flags gatehouse runs with in production (package.json `start`): a 64 MiB young-generation
 * semi-space, so the per-request garbage of thousands of streams in flight is collected by fewer
 * scavenges. Every benchmark process runs with the same flags (the ceiling too), so a ratio
 * compares code, not tuning. Measured: without them, once a process has loaded gatehouse's module
 * set (its old generation a few MiB larger), V8 keeps the young generation small and the hot path
 * costs ~1.5× (bench/hot-path.ts: 33 µs a request against 22 µs with them).
 */
export const NODE_FLAGS = ['--max-semi-space-size=64'] as const;
