/**
 * The dashboard's files: the page at `/`, its modules and stylesheet at
 * `/dashboard/<file>`, under a Content-Security-Policy that allows nothing
 * but this server (no inline script or style, no other origin).
 *
 * Where they come from depends on how the package runs. From its TypeScript
 * sources (`npm start`, the tests) the modules are `src/dashboard/*.ts`, sent
 * with their types stripped by Node's own `module.stripTypeScriptTypes`: the
 * browser imports `.ts` URLs, and an edit shows up at the next reload, with
 * no build. From `dist` they are the compiled `dist/dashboard/*.js`, and the
 * page's entry points at `.js`. In both cases the files are read at each request
 * (a stripped module is kept until its file changes).
 *
 * The page talks to the public API only, as any client does.
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { stripTypeScriptTypes } from "node:module"
import { readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { errorResponse } from "./guard.ts"
import { notFound } from "./errors.ts"

/** Where the dashboard's files are, and whether they are TypeScript to strip. */
export interface DashboardFiles {
  readonly directory: string
  readonly fromSources: boolean
}

/** Beside this module: `src/dashboard` when it runs as TypeScript, `dist/dashboard` when compiled. */
export const packageFiles: DashboardFiles = {
  directory: fileURLToPath(new URL("../dashboard/", import.meta.url)),
  fromSources: import.meta.url.endsWith(".ts")
}

/** Only this server's own files: no inline script or style, no other origin, no framing. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Revalidated at each load: an edited file shows up at once.
  "cache-control": "no-cache"
}

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".ts": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml"
}

/** A file name of the dashboard's own: no directories, no dot files. */
const fileName = /^[A-Za-z0-9][A-Za-z0-9_-]*\.(ts|js|css|svg)$/

/**
 * Strips a module's types. Node warns once per process that the function is
 * experimental; the server's output is no place for that, so that warning
 * alone is held back.
 */
const stripTypes = (source: string): string => {
  const emitWarning = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: Array<unknown>) => {
    const text = typeof warning === "string" ? warning : warning.message
    if (text.startsWith("stripTypeScriptTypes")) return
    return (emitWarning as (...args: Array<unknown>) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return stripTypeScriptTypes(source)
  } finally {
    process.emitWarning = emitWarning
  }
}

const notFoundResponse = (path: string) => errorResponse(notFound(`No such resource: GET ${path}`), 404)

/** The dashboard's routes over `files`. */
export const routes = (files: DashboardFiles = packageFiles) => {
  const stripped = new Map<string, { readonly mtimeMs: number; readonly text: string }>()

  /** A module as the browser gets it; stripped once per version of its file. */
  const moduleText = (path: string) =>
    Effect.tryPromise(async () => {
      const { mtimeMs } = await stat(path)
      const cached = stripped.get(path)
      if (cached !== undefined && cached.mtimeMs === mtimeMs) return cached.text
      const text = stripTypes(await readFile(path, "utf8"))
      stripped.set(path, { mtimeMs, text })
      return text
    })

  const page = Effect.gen(function*() {
    const html = yield* Effect.tryPromise(() => readFile(join(files.directory, "index.html"), "utf8"))
    // The page names its entry module as in the sources; compiled, it is a `.js`.
    const text = files.fromSources ? html : html.replace(/(<script [^>]*src="[^"]+)\.ts"/g, `$1.js"`)
    return HttpServerResponse.text(text, { contentType: contentTypes[".html"]!, headers: securityHeaders })
  }).pipe(Effect.orElseSucceed(() => notFoundResponse("/")))

  const asset = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?")[0]!
    const name = path.slice("/dashboard/".length)
    const match = fileName.exec(name)
    const extension = match === null ? undefined : `.${match[1]}`
    // Sources have TypeScript modules, a build JavaScript ones: the other kind is not there.
    if (extension === undefined || extension === (files.fromSources ? ".js" : ".ts")) return notFoundResponse(path)
    const file = join(files.directory, name)
    return yield* (extension === ".ts" ? moduleText(file) : Effect.tryPromise(() => readFile(file, "utf8"))).pipe(
      Effect.match({
        onFailure: () => notFoundResponse(path),
        onSuccess: (text) =>
          HttpServerResponse.text(text, { contentType: contentTypes[extension]!, headers: securityHeaders })
      })
    )
  })

  return Layer.mergeAll(
    HttpRouter.add("GET", "/", page),
    HttpRouter.add("GET", "/dashboard/*", asset)
  )
}
