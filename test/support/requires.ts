// A test that needs an outside tool (promtool, h2load, Debian's Python packages) is skipped, with
// the reason, on a developer machine that lacks it; under CI (CI=true, where .ci/run installs them)
// it runs and fails instead, so a missing install step can never pass as green.
export function skipUnlessCi(available: boolean, reason: string): false | string {
  if (available || process.env['CI'] === 'true') return false;
  return reason;
}
