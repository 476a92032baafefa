/**
 * Mutual TLS on the command line, as real processes, with certificates made by
 * openssl: `serve` refuses remote access without TLS (exit code 2, saying what
 * is missing) and starts with it; `qmp` and `watch` with a certificate from the
 * server's CA are served, `qmp` with one from another CA is not; each of the
 * three lists the TLS flags in its `--help`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeCertificates } from "../helpers/certificates.ts"
import { run, serve, start, tempDir } from "./harness.ts"

describe("effect-jobs serve / qmp / watch with mutual TLS", () => {
  it.live("remote access without TLS, or with part of it, is refused with exit code 2, saying what is missing", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string, string]> = [
        [
          ["serve", "--allow-remote", "--tcp", "0.0.0.0:0"],
          "listening on 0.0.0.0 (not a loopback address) needs --allow-remote and mutual TLS, as QMP has no " +
          "authentication of its own: missing --tls-cert FILE, --tls-key FILE, --tls-ca FILE",
          "serve"
        ],
        [
          ["serve", "--tcp", "0.0.0.0:0", "--tls-cert", "s.pem", "--tls-key", "s-key.pem", "--tls-ca", "ca.pem"],
          "listening on 0.0.0.0 (not a loopback address) needs --allow-remote and mutual TLS, as QMP has no " +
          "authentication of its own: missing --allow-remote",
          "serve"
        ],
        [
          ["serve", "--allow-remote", "--tcp", "127.0.0.1:0", "--tls-ca", "ca.pem"],
          "remote access (--allow-remote) needs mutual TLS, as QMP has no authentication of its own: " +
          "missing --tls-cert FILE, --tls-key FILE",
          "serve"
        ],
        [
          ["serve", "--tls-cert", "s.pem", "--tls-key", "s-key.pem", "--tls-ca", "ca.pem"],
          "--tls-cert, --tls-key and --tls-ca are for --tcp HOST:PORT (a Unix socket has no TLS)",
          "serve"
        ],
        [
          ["qmp", "--tcp", "127.0.0.1:1", "--tls-cert", "c.pem", "query-jobs"],
          "mutual TLS needs --tls-cert, --tls-key and --tls-ca together: missing --tls-key FILE, --tls-ca FILE",
          "qmp"
        ],
        [
          ["watch", "--socket", "s.sock", "--tls-cert", "c.pem", "--tls-key", "c-key.pem", "--tls-ca", "ca.pem"],
          "--tls-cert, --tls-key and --tls-ca are for --tcp HOST:PORT (a Unix socket has no TLS)",
          "watch"
        ]
      ]
      const results = yield* Effect.forEach(cases, ([args]) => run(args), { concurrency: "unbounded" })
      for (const [i, result] of results.entries()) {
        const [args, message, command] = cases[i]!
        const what = `effect-jobs ${args.join(" ")}`
        assert.strictEqual(result.code, 2, `${what}: exit code ${result.code}, stderr ${result.stderr}`)
        assert.strictEqual(
          result.stderr,
          `effect-jobs: ${message}\nRun 'npx effect-jobs ${command} --help' for usage.\n`,
          what
        )
        assert.strictEqual(result.stdout, "", what)
      }
    }))

  it.live("serve, qmp and watch describe the TLS flags in their --help", () =>
    Effect.gen(function*() {
      const helps = yield* Effect.forEach(["serve", "qmp", "watch"], (command) => run([command, "--help"]), {
        concurrency: "unbounded"
      })
      for (const help of helps) {
        assert.strictEqual(help.code, 0, help.stderr)
        for (const flag of ["--tls-cert", "--tls-key", "--tls-ca"]) assert.include(help.stdout, flag)
      }
    }))

  it.live("with TLS, serve --allow-remote on 0.0.0.0 starts; qmp and watch with a good certificate are served", () =>
    Effect.gen(function*() {
      const certs = yield* makeCertificates
      const { files } = certs
      const dir = yield* tempDir
      const { server, tcp } = yield* serve([
        "--allow-remote",
        "--tcp",
        "0.0.0.0:0",
        "--tls-cert",
        files.serverCert,
        "--tls-key",
        files.serverKey,
        "--tls-ca",
        files.ca
      ], { cwd: dir })
      assert.match(tcp!, /^0\.0\.0\.0:\d+$/)
      assert.include(server.stdout(), `  mutual TLS: only clients with a certificate signed by ${files.ca}\n`)
      const port = tcp!.slice(tcp!.lastIndexOf(":") + 1)
      assert.include(
        server.stdout(),
        `  npx effect-jobs qmp --tcp HOST:${port} --tls-cert CLIENT.pem --tls-key CLIENT-key.pem --tls-ca ${files.ca} query-jobs\n`
      )
      // The address is 0.0.0.0, but this machine is reached over loopback only.
      const endpoint = `127.0.0.1:${port}`
      const tls = (cert: string, key: string) => ["--tls-cert", cert, "--tls-key", key, "--tls-ca", files.ca]

      const watch = yield* start(["watch", "--tcp", endpoint, ...tls(files.clientCert, files.clientKey)])
      yield* watch.waitFor(new RegExp(`^watching tcp:127\\.0\\.0\\.1:${port} \\(TLS\\): 0 jobs$`))

      const [good, stranger, keyless] = yield* Effect.all([
        run(["qmp", "--tcp", endpoint, ...tls(files.clientCert, files.clientKey), "query-jobs"]),
        run(["qmp", "--tcp", endpoint, ...tls(files.otherClientCert, files.otherClientKey), "query-jobs"]),
        run(["qmp", "--tcp", endpoint, ...tls(files.clientCert, `${certs.dir}/missing-key.pem`), "query-jobs"])
      ], { concurrency: "unbounded" })
      assert.strictEqual(good.code, 0, good.stderr)
      assert.deepStrictEqual(JSON.parse(good.stdout), { return: [] })
      assert.strictEqual(stranger.code, 1)
      assert.strictEqual(stranger.stdout, "")
      assert.strictEqual(
        stranger.stderr,
        `effect-jobs: no reply from the QMP server at tcp:${endpoint} (TLS): connection closed before the greeting ` +
          `(does the server accept this client's certificate?)\n`
      )
      assert.strictEqual(keyless.code, 1)
      assert.match(keyless.stderr, /^effect-jobs: cannot read --tls-key .*missing-key\.pem: /)

      yield* server.signal("SIGTERM")
      const exited = yield* server.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      const watched = yield* watch.exited
      assert.strictEqual(watched.code, 0, watched.stderr)
      assert.match(watched.stdout, /the server shut down\n$/)
    }).pipe(Effect.scoped))
})
