/**
 * Durable lifecycle cost: no-op jobs created, started and awaited in batches
 * (as in lifecycle.ts) on the durable engine, timed until every event is in the
 * store (`jobs.durable`). One fresh engine per store — the memory store, a
 * SQLite file, a private Postgres server on a unix socket — next to the
 * in-memory engine, which has no store at all.
 */
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import type { Job } from "../src/Job.ts"
import * as JobDriver from "../src/JobDriver.ts"
import * as Jobs from "../src/Jobs.ts"
import * as JobStore from "../src/JobStore.ts"
import { postgresClusterWith } from "../test/store/postgresCluster.ts"
import { collectGarbage } from "./heap.ts"
import { elapsedNs, now, progress, round } from "./measure.ts"

const NoopDriver = JobDriver.make({
  type: "noop",
  params: Schema.Struct({}),
  make: () => Effect.succeed({ run: Effect.void })
})

/** What the store was asked to commit during one round: how the engine grouped its writes. */
interface Commits {
  commits: number
  /** Time from each commit's call to its success, summed. */
  ns: number
  events: number
  removedJobs: number
}

const noCommits = (): Commits => ({ commits: 0, ns: 0, events: 0, removedJobs: 0 })

/** `store` with every successful commit added to `commits` (the engine cannot be asked how it grouped them). */
const counting = <E>(store: Layer.Layer<JobStore.JobStore, E>, commits: Commits) =>
  Layer.effect(
    JobStore.JobStore,
    Effect.gen(function*() {
      const inner = yield* JobStore.JobStore
      return JobStore.JobStore.of({
        location: inner.location,
        readEvents: inner.readEvents,
        acquire: (owner, leaseOptions) =>
          Effect.map(inner.acquire(owner, leaseOptions), (owned) => ({
            ...owned,
            commit: (batch) =>
              Effect.suspend(() => {
                const start = now()
                return Effect.tap(owned.commit(batch), () =>
                  Effect.sync(() => {
                    commits.ns += elapsedNs(start)
                    commits.commits++
                    commits.events += batch.events?.length ?? 0
                    commits.removedJobs += batch.removedJobs?.length ?? 0
                  }))
              })
          }))
      })
    })
  ).pipe(Layer.provide(store))

interface RoundTimes {
  /** From the first create to the last awaitOutcome. */
  readonly outcomesNs: number
  /** From the first create to `jobs.durable` returning: the round's time. */
  readonly durableNs: number
}

/**
 * `count` jobs in batches of `batch` (create each, start each, await each
 * outcome), then `jobs.durable`; a full GC first, outside the time.
 */
const timedRound = (jobs: Jobs.JobsService, count: number, batch: number, prefix: string) =>
  Effect.gen(function*() {
    yield* Effect.promise(collectGarbage)
    const created: Array<Job> = new Array(batch)
    const start = now()
    for (let base = 0; base < count; base += batch) {
      const size = Math.min(batch, count - base)
      for (let i = 0; i < size; i++) {
        created[i] = yield* Effect.orDie(jobs.create({ type: "noop", id: `${prefix}${base + i}` }))
      }
      for (let i = 0; i < size; i++) yield* Effect.orDie(jobs.start(created[i]!))
      for (let i = 0; i < size; i++) {
        const outcome = yield* Effect.orDie(jobs.awaitOutcome(created[i]!))
        if (outcome._tag !== "Succeeded") return yield* Effect.die(new Error(`no-op job ended ${outcome._tag}`))
      }
    }
    const outcomesNs = elapsedNs(start)
    yield* jobs.durable
    const durableNs = elapsedNs(start)
    const left = yield* jobs.list
    if (left.length > 0) return yield* Effect.die(new Error(`${left.length} jobs were not dismissed`))
    const times: RoundTimes = { outcomesNs, durableNs }
    return times
  })

export interface EngineFigures {
  readonly jobs: number
  readonly totalMs: number
  readonly lifecyclesPerSecond: number
  readonly usPerJob: number
  /** Of the round's time, what was left after the last outcome: waiting for the last commits. */
  readonly durableWaitMs: number
  /** Only with a store: the commits of the best round. */
  readonly commits?: {
    readonly count: number
    /** Jobs dismissed (their records removed) per commit. */
    readonly jobsPerCommit: number
    readonly eventsPerCommit: number
    readonly eventsPerJob: number
    /** Time inside the store's commit, summed over the round: the writer's fiber, overlapping the engine's work. */
    readonly inCommitsMs: number
    readonly meanCommitMs: number
  }
}

interface Rounds {
  readonly jobs: number
  readonly batch: number
  readonly rounds: number
}

/**
 * One engine from `layer`: a warm-up round, then the best of `rounds`;
 * `commits` (when the engine has a store) is what its store counted.
 */
const measureEngine = <E>(
  name: string,
  layer: Layer.Layer<Jobs.Jobs, E>,
  options: Rounds,
  commits: Commits | undefined
) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    yield* Effect.orDie(jobs.register(NoopDriver))
    yield* jobs.recover
    progress(`durable: ${name}, warm-up with ${options.jobs} jobs`)
    yield* timedRound(jobs, options.jobs, options.batch, "w")
    let best: RoundTimes = { outcomesNs: Infinity, durableNs: Infinity }
    let bestCommits = noCommits()
    for (let r = 0; r < options.rounds; r++) {
      if (commits !== undefined) Object.assign(commits, noCommits())
      const times = yield* timedRound(jobs, options.jobs, options.batch, `r${r}-`)
      progress(
        `durable: ${name} round ${r + 1}/${options.rounds}: ${round(times.durableNs / 1e6)} ms until durable (${
          round(times.outcomesNs / 1e6)
        } ms until the last outcome)${commits === undefined ? "" : `, ${commits.commits} commits`}`
      )
      if (times.durableNs < best.durableNs) {
        best = times
        if (commits !== undefined) bestCommits = { ...commits }
      }
    }
    if (commits !== undefined && bestCommits.removedJobs !== options.jobs) {
      return yield* Effect.die(
        new Error(`${name}: ${bestCommits.removedJobs} of ${options.jobs} dismissals reached the store`)
      )
    }
    const figures: EngineFigures = {
      jobs: options.jobs,
      totalMs: round(best.durableNs / 1e6, 1),
      lifecyclesPerSecond: Math.round(options.jobs / (best.durableNs / 1e9)),
      usPerJob: round(best.durableNs / options.jobs / 1e3, 2),
      durableWaitMs: round((best.durableNs - best.outcomesNs) / 1e6, 1),
      ...(commits === undefined ? {} : {
        commits: {
          count: bestCommits.commits,
          jobsPerCommit: round(bestCommits.removedJobs / bestCommits.commits, 1),
          eventsPerCommit: round(bestCommits.events / bestCommits.commits, 1),
          eventsPerJob: round(bestCommits.events / options.jobs, 2),
          inCommitsMs: round(bestCommits.ns / 1e6, 1),
          meanCommitMs: round(bestCommits.ns / bestCommits.commits / 1e6, 2)
        }
      })
    }
    return figures
  }).pipe(Effect.provide(layer), Effect.orDie)

/** The durable engine on `store`, its commits counted. */
const durableOn = <E>(name: string, store: Layer.Layer<JobStore.JobStore, E>, options: Rounds) =>
  Effect.suspend(() => {
    const commits = noCommits()
    return measureEngine(name, Jobs.layerDurable().pipe(Layer.provide(counting(store, commits))), options, commits)
  })

/** A SQLite file in a fresh temporary directory, removed afterwards. */
const onSqlite = (options: Rounds) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-bench-durable-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    return yield* durableOn("SQLite store", JobStore.sqlite({ filename: join(dir, "jobs.db") }), options)
  }))

/**
 * A private Postgres server started for this figure, a new database in it.
 * A machine without PostgreSQL gets the reason instead of a figure.
 */
const onPostgres = (options: Rounds) =>
  Effect.scoped(Effect.gen(function*() {
    progress("durable: starting a private PostgreSQL server")
    // Postgres's own defaults: every commit flushed to disk, as a production server would.
    const cluster = yield* Effect.result(postgresClusterWith({ durable: true }))
    if (cluster._tag === "Failure") return { unavailable: cluster.failure.message }
    const url = yield* cluster.success.createDatabase("bench_durable")
    return yield* durableOn("Postgres store", JobStore.postgres({ url }), options)
  }))

export interface DurableOptions {
  /** Jobs per round on the in-memory engine, the memory store and SQLite. */
  readonly jobs: number
  /** Jobs per round on Postgres. */
  readonly postgresJobs: number
  readonly batch: number
  readonly rounds: number
}

const sqliteTarget = 10_000
const postgresTarget = 3_000

export const durable = (options: DurableOptions) =>
  Effect.gen(function*() {
    const local: Rounds = { jobs: options.jobs, batch: options.batch, rounds: options.rounds }
    const inMemoryEngine = yield* measureEngine("in-memory engine (no store)", Jobs.layer, local, undefined)
    const memoryStore = yield* durableOn("memory store", JobStore.memory, local)
    const sqlite = yield* onSqlite(local)
    const postgres = yield* onPostgres({ ...local, jobs: options.postgresJobs })
    const postgresRate = "lifecyclesPerSecond" in postgres ? postgres.lifecyclesPerSecond : null
    const ratio = (rate: number | null) => rate === null ? null : round(rate / memoryStore.lifecyclesPerSecond, 3)
    return {
      method: `No-op jobs (driver run = Effect.void, auto-finalize and auto-dismiss, no subscriber) in batches of ${options.batch}: ` +
        `jobs.create for every job of a batch, jobs.start on each, jobs.awaitOutcome on each (all must be Succeeded), ` +
        `then, after the last batch, jobs.durable, which returns once every event published so far is committed to the store; ` +
        `lifecyclesPerSecond = jobs / (time from the first create until jobs.durable returned). ` +
        `A fresh engine per store, each on a fresh store: Jobs.layerDurable on JobStore.memory, on JobStore.sqlite (a new file under ` +
        `os.tmpdir(), WAL, synchronous = FULL), and on JobStore.postgres (a database in a private PostgreSQL server started for this ` +
        `figure, over its unix socket, with PostgreSQL's defaults: fsync on, each commit flushed); and the in-memory engine ` +
        `(Jobs.layer, no store) for reference. Per engine: register, recover, ` +
        `one warm-up round, then the best of ${options.rounds} rounds, a full GC before each; ${options.jobs} jobs per round ` +
        `(${options.postgresJobs} on Postgres). durableWaitMs is the part of the round after the last outcome. commits are those of the best ` +
        `round, counted and timed by a wrapper around the store's commit (every job's dismissal must be among them): ` +
        `jobsPerCommit counts dismissals, inCommitsMs the time from each commit's call to its success, summed.`,
      batch: options.batch,
      inMemoryEngine,
      memoryStore,
      sqlite,
      postgres,
      ratioToMemoryStore: { sqlite: ratio(sqlite.lifecyclesPerSecond), postgres: ratio(postgresRate) },
      targets: {
        sqlite: {
          lifecyclesPerSecond: sqlite.lifecyclesPerSecond,
          target: `>= ${sqliteTarget} lifecycles/s`,
          meetsTarget: sqlite.lifecyclesPerSecond >= sqliteTarget
        },
        postgres: {
          lifecyclesPerSecond: postgresRate,
          target: `>= ${postgresTarget} lifecycles/s`,
          meetsTarget: postgresRate !== null && postgresRate >= postgresTarget
        }
      }
    }
  })
