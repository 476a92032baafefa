/**
 * End-to-end harness for the dashboard: a real server in this process (the
 * HTTP API on 127.0.0.1 over the engine, with the file drivers and a temp
 * directory of small files, or with the test driver), Debian's Chromium
 * driven by playwright-core (never a downloaded browser), and a TCP proxy
 * between the two that a test can cut and hold to kill the page's
 * connections for real.
 *
 * The browser is launched once per test file (`launchBrowser`), with a fresh
 * profile directory. Screenshots go to `test-artifacts/` (ignored by git).
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Http from "../../src/Http.ts"
import { Jobs, type JobsService, layer as jobsLayer, layerDurable, layerWith } from "../../src/Jobs.ts"
import type { JobStore } from "../../src/JobStore.ts"
import * as Testing from "../../src/testing.ts"

export const chromiumPath = "/usr/bin/chromium"
/** The flags every run uses: no GPU, no background traffic or updates, no first-run pages. */
export const chromiumFlags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run"
]

export const artifacts = fileURLToPath(new URL("../../test-artifacts/", import.meta.url))

/** Chromium with a fresh profile; closed (and its profile removed) by `close`. */
export const launchBrowser = async (): Promise<{ readonly context: BrowserContext; readonly close: () => Promise<void> }> => {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)`)
  }
  const profile = fs.mkdtempSync(join(os.tmpdir(), "ej-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    args: chromiumFlags,
    headless: true,
    viewport: { width: 1280, height: 800 }
  })
  return {
    context,
    close: async () => {
      await context.close()
      fs.rmSync(profile, { recursive: true, force: true })
    }
  }
}

/** A page that fails its test on any script error or refused resource (a CSP violation among them). */
export const openPage = async (context: BrowserContext, url: string): Promise<Page> => {
  const page = await context.newPage()
  const problems: Array<string> = []
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
  page.on("console", (message) => {
    // A request the API refused is the browser's console error too: the page shows those itself.
    if (message.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) {
      problems.push(`console error: ${message.text()}`)
    }
  })
  ;(page as Page & { problems: Array<string> }).problems = problems
  await page.goto(url)
  await page.waitForSelector("body[data-ready=true]")
  return page
}

export const problemsOf = (page: Page): ReadonlyArray<string> => (page as Page & { problems: Array<string> }).problems

/**
 * A TCP proxy to `target`: `cut` destroys every connection through it,
 * `hold` keeps new ones waiting (unanswered) until `release`.
 */
export class Proxy {
  readonly server: net.Server
  target = 0
  private readonly open = new Set<net.Socket>()
  private held: Array<net.Socket> | undefined

  constructor() {
    this.server = net.createServer((client) => {
      if (this.held !== undefined) {
        client.pause()
        this.held.push(client)
      } else this.forward(client)
    })
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve))
    return (this.server.address() as net.AddressInfo).port
  }

  private forward(client: net.Socket): void {
    const upstream = net.connect(this.target, "127.0.0.1")
    this.open.add(client)
    this.open.add(upstream)
    const end = () => {
      client.destroy()
      upstream.destroy()
      this.open.delete(client)
      this.open.delete(upstream)
    }
    client.on("error", end).on("close", end)
    upstream.on("error", end).on("close", end)
    client.pipe(upstream)
    upstream.pipe(client)
    client.resume()
  }

  /** Every connection through the proxy, dropped at once. */
  cut(): void {
    for (const socket of this.open) socket.destroy()
    this.open.clear()
  }

  hold(): void {
    this.held ??= []
  }

  release(): void {
    const held = this.held ?? []
    this.held = undefined
    for (const client of held) this.forward(client)
  }

  close(): Promise<void> {
    this.cut()
    for (const client of this.held ?? []) client.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

export interface TestServer {
  /** Where the browser goes: through the proxy, if there is one. */
  readonly url: string
  /** The server itself, for the test's own requests. */
  readonly apiUrl: string
  readonly jobs: JobsService
  readonly proxy: Proxy | undefined
  /** The temp directory of the file jobs. */
  readonly dir: string
  /** Runs an Effect of the engine's. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Jobs>) => Promise<A>
  readonly close: () => Promise<void>
}

export interface ServerOptions {
  readonly readOnly?: boolean
  readonly proxy?: boolean
  /** The test driver instead of the file drivers. */
  readonly testDriver?: boolean
  readonly retainedEvents?: number
  /** A durable engine on this store (recovered before the server starts), with the file drivers. */
  readonly store?: Layer.Layer<JobStore>
}

/** A server of the API with its dashboard, over a fresh engine. */
export const startServer = async (options: ServerOptions = {}): Promise<TestServer> => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "ej-dash-"))
  const proxy = options.proxy === true ? new Proxy() : undefined
  const proxyPort = proxy === undefined ? undefined : await proxy.listen()
  const scope = Effect.runSync(Scope.make())
  const engine = options.store !== undefined
    ? layerDurable().pipe(Layer.provide(options.store), Layer.orDie)
    : options.retainedEvents === undefined
    ? jobsLayer
    : layerWith({ retainedEvents: options.retainedEvents })
  const services: Layer.Layer<Jobs> = options.testDriver === true
    ? (options.retainedEvents === undefined ? Testing.layer : Testing.layerWith({ retainedEvents: options.retainedEvents }))
    // Small chunks: a small file at a low speed limit moves its progress bar, and its rate, smoothly.
    : FileDrivers.layerWith({ chunkSize: 16 * 1024 }).pipe(Layer.provideMerge(Layer.mergeAll(engine, NodeServices.layer)))
  const context = await Effect.runPromise(Layer.buildWithScope(services, scope))
  const run = <A, E>(effect: Effect.Effect<A, E, Jobs>) => Effect.runPromise(Effect.provideContext(effect, context))
  if (options.store !== undefined) await run(Effect.flatMap(Effect.service(Jobs), (jobs) => jobs.recover))
  const server = await Effect.runPromise(
    Http.make({
      port: 0,
      readOnly: options.readOnly,
      allowedHosts: proxyPort === undefined ? [] : [`127.0.0.1:${proxyPort}`],
      sampleInterval: "100 millis"
    }).pipe(Effect.provideContext(context), Scope.provide(scope))
  )
  if (proxy !== undefined) proxy.target = (server.address as { readonly port: number }).port
  return {
    url: proxyPort === undefined ? `${server.url}/` : `http://127.0.0.1:${proxyPort}/`,
    apiUrl: server.url,
    jobs: await run(Effect.service(Jobs)),
    proxy,
    dir,
    run,
    close: async () => {
      await proxy?.close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** `n` bytes that differ from chunk to chunk, written to `dir/name`; its path. */
export const writeFile = (dir: string, name: string, n: number): string => {
  const data = new Uint8Array(n)
  let x = 7
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    data[i] = x >>> 24
  }
  const path = join(dir, name)
  fs.writeFileSync(path, data)
  return path
}

/** A request to the API, straight to the server. */
export const api = async (server: TestServer, path: string, body?: object): Promise<{ readonly status: number; readonly json: any }> => {
  const response = await fetch(`${server.apiUrl}${path}`, body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  const text = await response.text()
  return { status: response.status, json: text === "" ? undefined : JSON.parse(text) }
}

/** Waits until `check` holds, polling; fails with `what` after `timeout` ms. */
export const until = async (what: string, check: () => Promise<boolean> | boolean, timeout = 10_000): Promise<void> => {
  const deadline = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

export const screenshot = async (page: Page, name: string): Promise<void> => {
  fs.mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, name) })
}
