/**
 * The job store in a Postgres database, on `@effect/sql-pg`: the store a
 * fleet of servers shares (one owner at a time). `@effect/sql-pg` is an
 * optional peer dependency of effect-jobs: it is loaded only when a Postgres
 * store is opened, so programs that keep their jobs elsewhere need not
 * install it.
 *
 * @since 0.1.0
 */
import { Effect, Redacted, type Scope } from "effect"
import { Reactivity } from "effect/reactivity"
import { StoreUnavailable } from "./errors.ts"
import type { JobStoreService } from "./service.ts"
import * as SqlStore from "./sqlStore.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (a unix socket: `?host=/socket/dir`). */
  readonly url: string | Redacted.Redacted<string>
  /** The most connections the store opens (default 4: the store writes one transaction at a time). */
  readonly maxConnections?: number | undefined
}

/** The URL as messages may show it: without its password. */
export const displayUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = ""
    parsed.searchParams.delete("password")
    return parsed.toString()
  } catch {
    return "postgres (an invalid URL)"
  }
}

/** Connects (lazily: the first statement opens the first connection) for the life of the scope. */
export const make = (options: PostgresStoreOptions): Effect.Effect<JobStoreService, StoreUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
    const location = displayUrl(Redacted.value(url))
    const { PgClient } = yield* Effect.tryPromise({
      try: () => import("@effect/sql-pg"),
      catch: (cause) =>
        new StoreUnavailable({
          store: location,
          operation: "load the Postgres driver",
          reason: `@effect/sql-pg cannot be loaded; install it beside effect-jobs (npm install @effect/sql-pg): ${
            cause instanceof Error ? cause.message : String(cause)
          }`,
          cause
        })
    })
    const client = yield* PgClient.make({ url, maxConnections: options.maxConnections ?? 4 }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError((error) =>
        new StoreUnavailable({ store: location, operation: "connect", reason: error.message, cause: error })
      )
    )
    return SqlStore.make(client, { location })
  })
