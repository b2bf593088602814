// A throwaway PKI made with openssl in a test's temporary directory, never checked in: a CA and
// server/client certificates it signed (SAN localhost), all P-256. Files: ca.crt, server.{crt,key},
// client.{crt,key}.
import { execFileSync } from 'node:child_process';

export function makePkiWithSan(dir: string): void {
  execFileSync('sh', ['-c', `
    set -e
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=test-ca 2>/dev/null
    printf 'subjectAltName=DNS:localhost\\n' > san.ext
    for n in server client; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
      openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 1 -extfile san.ext 2>/dev/null
    done`], { cwd: dir, stdio: 'pipe' });
}
