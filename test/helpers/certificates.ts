/**
 * Certificates for TLS tests, made with the `openssl` command at test time
 * (the same commands docs/qmp.md shows): a CA; a server certificate for
 * 127.0.0.1 and localhost, and a client certificate, both signed by it; and a
 * second CA with a client certificate of its own, which the server must
 * refuse.
 */
import { Effect, type Scope } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"

export interface Certificates {
  readonly dir: string
  /** Paths of the PEM files. */
  readonly files: {
    readonly ca: string
    readonly serverCert: string
    readonly serverKey: string
    readonly clientCert: string
    readonly clientKey: string
    readonly otherCa: string
    readonly otherClientCert: string
    readonly otherClientKey: string
  }
  /** Reads one of them. */
  readonly read: (file: keyof Certificates["files"]) => string
}

const openssl = (dir: string, args: ReadonlyArray<string>) => {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] })
}

/** A CA: `NAME.pem` and `NAME-key.pem`. */
const makeCa = (dir: string, name: string, subject: string) =>
  openssl(dir, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", `${name}-key.pem`, "-out", `${name}.pem`, "-days", "2", "-subj", subject,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"
  ])

/** A certificate signed by the CA `ca`: `NAME.pem` and `NAME-key.pem`, with the extensions given. */
const makeSigned = (dir: string, ca: string, name: string, subject: string, extensions: ReadonlyArray<string>) => {
  fs.writeFileSync(join(dir, `${name}.ext`), extensions.map((line) => `${line}\n`).join(""))
  openssl(dir, [
    "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", subject
  ])
  openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}-key.pem`, "-CAcreateserial",
    "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`
  ])
}

/** Makes the certificates in a temporary directory, removed with the scope. */
export const makeCertificates: Effect.Effect<Certificates, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = fs.mkdtempSync(join(os.tmpdir(), "ej-tls-"))
    makeCa(dir, "ca", "/CN=effect-jobs CA")
    makeSigned(dir, "ca", "server", "/CN=effect-jobs server", ["subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth"])
    makeSigned(dir, "ca", "client", "/CN=operator", ["extendedKeyUsage=clientAuth"])
    makeCa(dir, "other-ca", "/CN=another CA")
    makeSigned(dir, "other-ca", "other-client", "/CN=intruder", ["extendedKeyUsage=clientAuth"])
    const files = {
      ca: join(dir, "ca.pem"),
      serverCert: join(dir, "server.pem"),
      serverKey: join(dir, "server-key.pem"),
      clientCert: join(dir, "client.pem"),
      clientKey: join(dir, "client-key.pem"),
      otherCa: join(dir, "other-ca.pem"),
      otherClientCert: join(dir, "other-client.pem"),
      otherClientKey: join(dir, "other-client-key.pem")
    }
    return { dir, files, read: (file: keyof typeof files) => fs.readFileSync(files[file], "utf8") }
  }),
  ({ dir }) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)
