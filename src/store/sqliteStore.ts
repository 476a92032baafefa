/**
 * The job store in a SQLite file, on `node:sqlite` (`NodeSqliteClient`) in
 * WAL mode: the embedded store of one server. A file that is not a database,
 * or a damaged one, is reported as `StoreCorrupt` and left as it is.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, type Scope } from "effect"
import { Reactivity } from "effect/reactivity"
import type { SqlError } from "effect/sql"
import * as NodeSqliteClient from "../sql/NodeSqliteClient.ts"
import { StoreCorrupt, StoreUnavailable } from "./errors.ts"
import type { JobStoreService } from "./service.ts"
import * as SqlStore from "./sqlStore.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface SqliteStoreOptions {
  /** The database file; created if missing. */
  readonly filename: string
  /** How long a statement waits for another connection's lock (default 5 seconds). */
  readonly busyTimeout?: Duration.Input | undefined
}

/** SQLite's result codes for a damaged file (SQLITE_CORRUPT) and for no database at all (SQLITE_NOTADB). */
const corruptCodes: ReadonlySet<number> = new Set([11, 26])

const isCorrupt = (error: SqlError.SqlError): boolean => {
  const code = (error.reason.cause as { errcode?: unknown } | undefined)?.errcode
  return typeof code === "number" && corruptCodes.has(code & 0xff)
}

/** Opens the file for the life of the scope, and the store on it. */
export const make = (options: SqliteStoreOptions): Effect.Effect<
  JobStoreService,
  StoreCorrupt | StoreUnavailable,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const location = `sqlite:${options.filename}`
    const client = yield* NodeSqliteClient.make({
      filename: options.filename,
      wal: true,
      ...(options.busyTimeout === undefined ? {} : { busyTimeout: options.busyTimeout })
    }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError((error) =>
        isCorrupt(error)
          ? new StoreCorrupt({ store: location, reason: error.message, cause: error })
          : new StoreUnavailable({ store: location, operation: "open", reason: error.message, cause: error })
      )
    )
    return SqlStore.make(client, { location, isCorrupt })
  })
