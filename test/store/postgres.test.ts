/**
 * The store contract against Postgres: a real server, started for this file
 * in a temporary directory (see `postgresCluster.ts`), a new database for each
 * test, each opening of the store a client of its own. And what only a
 * server goes through: a database a newer version wrote (refused, untouched),
 * and a server that is not there (a clear error that does not show the
 * password).
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted, Scope } from "effect"
import { afterAll, beforeAll } from "vitest"
import * as JobStore from "../../src/JobStore.ts"
import { type PostgresCluster, postgresCluster } from "./postgresCluster.ts"
import { open, storeSuite } from "./storeSuite.ts"

const scope = Effect.runSync(Scope.make())
let cluster: PostgresCluster | undefined
let databases = 0

beforeAll(async () => {
  cluster = await Effect.runPromise(Scope.provide(postgresCluster, scope))
})

afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

/** A new database on the file's server. */
const freshDatabase = Effect.suspend(() => cluster!.createDatabase(`store_${++databases}`))

storeSuite("Postgres", Effect.map(freshDatabase, (url) => JobStore.postgres({ url })))

const owner = JobStore.processOwner("owner-a")

/** Runs SQL in the database at `url` through a client of its own. */
const onDatabase = <A>(url: string, statement: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  PgClient.PgClient.use(statement).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url) }))
  )

/** Every row of the store's tables, as text: what "left as it was" compares. */
const dump = (url: string) =>
  onDatabase(url, (sql) =>
    Effect.forEach(
      ["effect_jobs_migrations", "effect_jobs_lease", "effect_jobs_jobs", "effect_jobs_events", "effect_jobs_sequence"],
      (table) =>
        Effect.map(
          sql`SELECT * FROM ${sql(table)} ORDER BY 1`,
          (rows) => `${table}: ${JSON.stringify(rows, (_, v) => typeof v === "bigint" ? String(v) : v)}`
        )
    ))

describe("JobStore (Postgres server)", () => {
  it.effect("refuses a database a newer version wrote, and leaves it as it was", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const store = JobStore.postgres({ url })
      yield* Effect.scoped(Effect.gen(function*() {
        const owned = yield* Effect.flatMap(open(store), (s) => s.acquire(owner))
        yield* owned.commit({ events: [{ _tag: "StatusChange", seq: 1, timestamp: 0, id: "a", status: "created" }] })
      }))
      yield* onDatabase(url, (sql) => sql`INSERT INTO effect_jobs_migrations (migration_id, name) VALUES (7, 'future')`)
      const before = yield* dump(url)
      assert.include(before.join("\n"), "\"migration_id\":7")
      const error = yield* Effect.scoped(Effect.flip(Effect.flatMap(open(store), (s) => s.acquire(owner))))
      assert.strictEqual(error._tag, "StoreTooNew")
      if (error._tag !== "StoreTooNew") return
      assert.deepStrictEqual([error.found, error.known], [7, 1])
      assert.include(error.message, "has schema version 7, written by a newer effect-jobs")
      assert.deepStrictEqual(yield* dump(url), before)
    }))

  it.effect("says where the server it cannot reach should be, without the password", () =>
    Effect.gen(function*() {
      const url = `postgres://someone:s3cret@localhost/jobs?host=${encodeURIComponent(cluster!.dir)}&port=1`
      const error = yield* Effect.scoped(
        Effect.flip(Effect.flatMap(open(JobStore.postgres({ url })), (s) => s.acquire(owner)))
      )
      assert.strictEqual(error._tag, "StoreUnavailable")
      assert.include(error.message, `The job store postgres://someone@localhost/jobs?host=`)
      assert.include(error.message, "is unavailable (open)")
      assert.notInclude(error.message, "s3cret")
    }))
})
