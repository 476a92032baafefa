/**
 * Interrupting the caller of a verb never wedges the engine. The engine takes
 * its decisions in `Effect.tx` and carries them out in further steps in the
 * caller's fiber; a caller that goes away between the two (a time-out, a client
 * that hangs up) must not leave a job or a transaction half-way — in
 * `finalizing` or `aborting` with nobody carrying it out, a job marked started
 * with no fiber, a cancel counted in flight forever — nor a lifecycle callback
 * (`prepare`, `commit`, `abort`, `clean`, `free`) cut short.
 *
 * For each verb (and each wait) a scenario where it does real multi-step work:
 * members of a transaction, the driver's callbacks each taking a few scheduler
 * turns (`steppedDriver.ts`). The verb runs in its own fiber with a budget of a
 * few operations per turn, and is interrupted after k turns, for every k from 1
 * until the verb ends before its interruption (see `turnCounts`); each trial
 * has a fresh `Jobs` layer (building one takes well under a millisecond).
 *
 * Then the world goes on: every job is helped along (started, resumed,
 * completed, finalized) and what is left is force-cancelled; every job must
 * conclude, every transaction settle, the `Jobs` layer close, and every job get
 * exactly one `commit` or `abort`, one `clean` and one `free`, each run to its
 * end. Every wait is bounded in real time, so a stuck engine fails the test
 * (naming the verb, k and what did not finish) instead of hanging it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Data, Effect, Exit, Layer, References, Scope } from "effect"
import type { Job } from "../src/Job.ts"
import type { JobStatus } from "../src/JobStatus.ts"
import * as JobTxn from "../src/JobTxn.ts"
import * as JobVerb from "../src/JobVerb.ts"
import { Jobs, type JobsService } from "../src/Jobs.ts"
import { awaitBounded, bounded, interruptAfter, type Stuck } from "./helpers/interrupt.ts"
import { type SteppedCallback, SteppedLog, type SteppedParams, steppedLayer } from "./helpers/steppedDriver.ts"

/**
 * The turns after which the caller is interrupted: every count up to 200, then
 * every fourth up to 600 (the longest verbs here take a little over 200 turns).
 */
const turnCounts = function*() {
  for (let turns = 1; turns <= 200; turns++) yield turns
  for (let turns = 204; turns <= 600; turns += 4) yield turns
}
/** Operations a fiber runs per scheduler turn (effect's scheduler needs at least 3 to make progress). */
const opsPerTurn = 3
/** Real time anything may take before the engine counts as stuck; all of it normally takes microseconds. */
const boundMillis = 2_000

/** A trial found the engine misbehaving. */
class Broken extends Data.TaggedError("Broken")<{ readonly problem: string }> {}

interface World {
  readonly jobs: JobsService
  readonly log: Context.Service.Shape<typeof SteppedLog>
  /** Every job the scenario made, in creation order. */
  readonly made: Array<Job>
  readonly txns: Array<JobTxn.JobTxn>
  /** What `JobTxn.awaitOutcome` returned for each transaction. */
  readonly outcomes: Map<JobTxn.JobTxn, JobTxn.TxnOutcome>
}

interface Stage {
  /** The call whose caller is interrupted. */
  readonly verb: Effect.Effect<unknown, unknown>
  /** What another caller does at the same time (never interrupted). */
  readonly meanwhile?: Effect.Effect<unknown, unknown> | undefined
}

interface Case {
  readonly name: string
  readonly setUp: (world: World) => Effect.Effect<Stage, unknown>
}

interface MakeOptions {
  readonly txn?: JobTxn.JobTxn | undefined
  readonly manualFinalize?: boolean | undefined
  readonly manualDismiss?: boolean | undefined
  readonly start?: boolean | undefined
}

/** Creates (and, unless told otherwise, starts) a job of the stepped driver. */
const make = (world: World, id: string, params: SteppedParams, options: MakeOptions = {}) =>
  Effect.gen(function*() {
    const job = yield* world.jobs.create({
      type: "stepped",
      id,
      params,
      txn: options.txn,
      manualFinalize: options.manualFinalize,
      manualDismiss: options.manualDismiss
    })
    world.made.push(job)
    if (options.start ?? true) yield* world.jobs.start(job)
    return job
  })

const newTxn = (world: World) => Effect.tap(JobTxn.make, (txn) => Effect.sync(() => world.txns.push(txn)))

/** Waits (bounded) until the job is in `status`: the stage is set. */
const reach = (world: World, job: Job, status: JobStatus) =>
  Effect.flatten(
    bounded(`setting the stage: ${job.id} reaching ${status}`, world.jobs.awaitStatus(job, status), boundMillis)
  )

const hold: SteppedParams = { run: "hold" }
const finish: SteppedParams = { run: "finish" }
const ready: SteppedParams = { run: "ready" }
const holdSoft: SteppedParams = { run: "hold", softCancel: true }
const readySoft: SteppedParams = { run: "ready", softCancel: true }

/** A transaction of `a` (made by `first`) and two members that finished their work and wait (WAITING) for it. */
const withWaitingPartners = (
  world: World,
  first: (txn: JobTxn.JobTxn) => Effect.Effect<Job, unknown>
) =>
  Effect.gen(function*() {
    const txn = yield* newTxn(world)
    const a = yield* first(txn)
    const b = yield* make(world, "b", finish, { txn })
    const c = yield* make(world, "c", finish, { txn })
    yield* reach(world, b, "waiting")
    yield* reach(world, c, "waiting")
    return { txn, a, b, c }
  })

const cases: ReadonlyArray<Case> = [
  {
    name: "cancel (soft, which the driver's cancel callback makes hard) of a running member; the others WAITING",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", holdSoft, { txn })), ({ a }) => ({
        verb: world.jobs.cancel(a)
      }))
  },
  {
    name: "cancel (soft) of a READY member, which the driver turns into completion; the others WAITING",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(world, (txn) => make(world, "a", readySoft, { txn }))
        yield* reach(world, a, "ready")
        return { verb: world.jobs.cancel(a) }
      })
  },
  {
    name: "cancel (force) of a running member, through the driver's cancel callback; the others WAITING",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", holdSoft, { txn })), ({ a }) => ({
        verb: world.jobs.cancel(a, { force: true })
      }))
  },
  {
    name: "cancel (force) of a user-paused running member (userResume first); the others WAITING",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(world, (txn) => make(world, "a", hold, { txn }))
        yield* world.jobs.pause(a)
        yield* reach(world, a, "paused")
        return { verb: world.jobs.cancel(a, { force: true }) }
      })
  },
  {
    name: "cancel (force) of a WAITING member while another still runs",
    setUp: (world) =>
      Effect.gen(function*() {
        const txn = yield* newTxn(world)
        const a = yield* make(world, "a", finish, { txn })
        yield* make(world, "b", hold, { txn })
        const c = yield* make(world, "c", finish, { txn })
        yield* reach(world, a, "waiting")
        yield* reach(world, c, "waiting")
        return { verb: world.jobs.cancel(a, { force: true }) }
      })
  },
  {
    name: "cancel (force) of a PENDING member of a manual-finalize transaction",
    setUp: (world) =>
      Effect.gen(function*() {
        const txn = yield* newTxn(world)
        const a = yield* make(world, "a", finish, { txn, manualFinalize: true })
        const b = yield* make(world, "b", finish, { txn, manualFinalize: true })
        const c = yield* make(world, "c", finish, { txn, manualFinalize: true })
        for (const job of [a, b, c]) yield* reach(world, job, "pending")
        return { verb: world.jobs.cancel(a, { force: true }) }
      })
  },
  {
    name: "cancel (force) of a never-started member; the others WAITING",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", finish, { txn, start: false })), ({ a }) => ({
        verb: world.jobs.cancel(a, { force: true })
      }))
  },
  {
    name: "JobTxn.cancel of a transaction with a running, a READY and a WAITING member",
    setUp: (world) =>
      Effect.gen(function*() {
        const txn = yield* newTxn(world)
        yield* make(world, "a", hold, { txn })
        const b = yield* make(world, "b", ready, { txn })
        const c = yield* make(world, "c", finish, { txn })
        yield* reach(world, b, "ready")
        yield* reach(world, c, "waiting")
        return { verb: JobTxn.cancel(txn) }
      })
  },
  {
    name: "finalize of a manual-finalize transaction whose members prepare",
    setUp: (world) =>
      Effect.gen(function*() {
        const txn = yield* newTxn(world)
        const a = yield* make(world, "a", finish, { txn, manualFinalize: true })
        const b = yield* make(world, "b", finish, { txn, manualFinalize: true })
        const c = yield* make(world, "c", finish, { txn, manualFinalize: true })
        for (const job of [a, b, c]) yield* reach(world, job, "pending")
        return { verb: world.jobs.finalize(b) }
      })
  },
  {
    name: "complete of a READY member (its complete callback yields); the others WAITING",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(world, (txn) => make(world, "a", ready, { txn }))
        yield* reach(world, a, "ready")
        return { verb: world.jobs.complete(a) }
      })
  },
  {
    name: "dismiss of a CONCLUDED manual-dismiss job (its free callback yields)",
    setUp: (world) =>
      Effect.gen(function*() {
        const a = yield* make(world, "a", finish, { manualDismiss: true })
        yield* reach(world, a, "concluded")
        return { verb: world.jobs.dismiss(a) }
      })
  },
  {
    name: "pause of a running member",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", hold, { txn })), ({ a }) => ({
        verb: world.jobs.pause(a)
      }))
  },
  {
    name: "resume of a user-paused member (its userResume callback yields)",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(world, (txn) => make(world, "a", hold, { txn }))
        yield* world.jobs.pause(a)
        yield* reach(world, a, "paused")
        return { verb: world.jobs.resume(a) }
      })
  },
  {
    name: "setSpeed of a running member (its setSpeed callback yields)",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", hold, { txn })), ({ a }) => ({
        verb: world.jobs.setSpeed(a, 1_000)
      }))
  },
  {
    name: "start of the last member of a transaction whose other members wait for it",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", finish, { txn, start: false })), ({ a }) => ({
        verb: world.jobs.start(a)
      }))
  },
  {
    name: "cancelSync (force) of a running member; the others WAITING",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", holdSoft, { txn })), ({ a }) => ({
        verb: world.jobs.cancelSync(a, { force: true })
      }))
  },
  {
    name: "cancelSync (force) of a WAITING member while another still runs",
    setUp: (world) =>
      Effect.gen(function*() {
        const txn = yield* newTxn(world)
        const a = yield* make(world, "a", finish, { txn })
        yield* make(world, "b", hold, { txn })
        yield* reach(world, a, "waiting")
        return { verb: world.jobs.cancelSync(a, { force: true }) }
      })
  },
  {
    name: "cancelSync (soft) of a READY member, which the driver turns into completion",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(world, (txn) => make(world, "a", readySoft, { txn }))
        yield* reach(world, a, "ready")
        return { verb: world.jobs.cancelSync(a) }
      })
  },
  {
    name: "completeSync of a READY member; the others WAITING",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(world, (txn) => make(world, "a", ready, { txn }))
        yield* reach(world, a, "ready")
        return { verb: world.jobs.completeSync(a) }
      })
  },
  {
    name: "finishSync of a READY member while another caller completes it",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(world, (txn) => make(world, "a", ready, { txn }))
        yield* reach(world, a, "ready")
        return { verb: world.jobs.finishSync(a), meanwhile: world.jobs.complete(a) }
      })
  },
  {
    name: "awaitOutcome of a running member while another caller force-cancels a WAITING one",
    setUp: (world) =>
      Effect.map(withWaitingPartners(world, (txn) => make(world, "a", hold, { txn })), ({ a, b }) => ({
        verb: world.jobs.awaitOutcome(a),
        meanwhile: world.jobs.cancel(b, { force: true })
      }))
  },
  {
    name: "awaitStatus (concluded) of a READY member while another caller completes it",
    setUp: (world) =>
      Effect.gen(function*() {
        const { a } = yield* withWaitingPartners(
          world,
          (txn) => make(world, "a", ready, { txn, manualDismiss: true })
        )
        yield* reach(world, a, "ready")
        return { verb: world.jobs.awaitStatus(a, "concluded"), meanwhile: world.jobs.complete(a) }
      })
  },
  {
    name: "join of a member of a transaction being finalized by another caller",
    setUp: (world) =>
      Effect.gen(function*() {
        const txn = yield* newTxn(world)
        const a = yield* make(world, "a", finish, { txn, manualFinalize: true })
        const b = yield* make(world, "b", finish, { txn, manualFinalize: true })
        yield* reach(world, a, "pending")
        yield* reach(world, b, "pending")
        return { verb: world.jobs.join(b), meanwhile: world.jobs.finalize(a) }
      })
  }
]

/** Runs `effect` bounded; a defect is a problem, a typed error is not (the job may have moved on). */
const act = (what: string, effect: Effect.Effect<unknown, unknown>) =>
  Effect.flatMap(bounded(what, effect, boundMillis), (exit) =>
    Exit.isFailure(exit) && !Cause.hasFails(exit.cause) && !Cause.hasInterruptsOnly(exit.cause)
      ? Effect.fail(new Broken({ problem: `${what} died: ${Cause.pretty(exit.cause)}` }))
      : Effect.void)

const live = (job: Job) => job.status !== "concluded" && job.status !== "null"

/**
 * What a user does after the interrupted call: helps every job along (starts,
 * resumes, completes, finalizes), then force-cancels whatever has not concluded.
 */
const finishAll = (world: World) =>
  Effect.gen(function*() {
    const { jobs } = world
    for (const job of world.made) {
      if (job.status === "created") yield* act(`start ${job.id}`, jobs.start(job))
      if (job.userPaused && JobVerb.isAllowed("resume", job.status)) yield* act(`resume ${job.id}`, jobs.resume(job))
      if (job.status === "ready" || job.status === "standby") yield* act(`complete ${job.id}`, jobs.complete(job))
      if (job.status === "pending") yield* act(`finalize ${job.id}`, jobs.finalize(job))
    }
    for (const job of world.made) {
      if (live(job) && JobVerb.isAllowed("cancel", job.status)) {
        yield* act(`cancel (force) ${job.id}`, jobs.cancel(job, { force: true }))
      }
    }
    for (const job of world.made) yield* act(`awaitOutcome ${job.id}`, jobs.awaitOutcome(job))
    for (const job of world.made) {
      if (job.status === "concluded") yield* act(`dismiss ${job.id}`, jobs.dismiss(job))
    }
    for (const txn of world.txns) {
      const settled = yield* bounded("JobTxn.awaitOutcome", JobTxn.awaitOutcome(txn), boundMillis)
      if (Exit.isFailure(settled)) {
        return yield* new Broken({ problem: `JobTxn.awaitOutcome failed: ${Cause.pretty(settled.cause)}` })
      }
      world.outcomes.set(txn, settled.value)
    }
  })

const lifecycle: ReadonlyArray<SteppedCallback> = ["prepare", "commit", "abort", "clean", "free"]

/**
 * Every job concluded and left; one `commit` or `abort`, one `clean`, one `free`,
 * none cut short; every member of a transaction got what its outcome says.
 */
const checkEnd = (world: World): Array<string> => {
  const problems: Array<string> = []
  for (const job of world.made) {
    const id = job.id!
    if (job.status !== "null") problems.push(`${id} is ${job.status} after the Jobs layer closed`)
    const ends = world.log.finished(id, "commit") + world.log.finished(id, "abort")
    if (ends !== 1) problems.push(`${id} got ${ends} commit/abort to the end, expected 1`)
    for (const callback of ["clean", "free"] as const) {
      const n = world.log.finished(id, callback)
      if (n !== 1) problems.push(`${id} got ${n} ${callback} to the end, expected 1`)
    }
    const cut = world.log.calls.filter((c) => c.job === id && c.phase === "start" && lifecycle.includes(c.callback))
      .filter((c) => world.log.finished(id, c.callback) === 0)
    for (const c of cut) problems.push(`${id}: ${c.callback} was cut short`)
  }
  for (const txn of world.txns) {
    const expected = world.outcomes.get(txn)?._tag === "Committed" ? "commit" : "abort"
    const ends = txn.members.map((m) => world.log.finished(m.id!, "commit") > 0 ? "commit" : "abort")
    if (ends.some((end) => end !== expected)) {
      problems.push(
        `transaction ${world.outcomes.get(txn)?._tag} but ${txn.members.map((m, i) => `${m.id}:${ends[i]}`).join(" ")}`
      )
    }
  }
  return problems
}

const describeWorld = (world: World) =>
  world.made.map((job) => `  ${job.id} ${job.status}: ${world.log.of(job.id!).join(", ")}`).join("\n")

/**
 * One trial: a fresh `Jobs` layer, the stage, the verb interrupted after `turns`
 * turns, the world going on, the layer closing. Returns whether the verb had
 * ended before it was interrupted.
 */
const trial = (c: Case, turns: number): Effect.Effect<boolean, Broken> =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(steppedLayer, scope)
    const world: World = {
      jobs: Context.get(context, Jobs),
      log: Context.get(context, SteppedLog),
      made: [],
      txns: [],
      outcomes: new Map()
    }
    const report = (problem: string) => new Broken({ problem: `${problem}\n${describeWorld(world)}` })
    const run = Effect.gen(function*() {
      const stage = yield* Effect.mapError(c.setUp(world), (e) => report(`setting the stage failed: ${String(e)}`))
      const meanwhile = stage.meanwhile === undefined
        ? undefined
        : yield* Effect.forkDetach(stage.meanwhile, { startImmediately: true })
      const { endedFirst, fiber } = yield* interruptAfter(stage.verb, turns)
      const exit = yield* awaitBounded("the interrupted caller", fiber, boundMillis)
      if (Exit.isFailure(exit) && Cause.hasDies(exit.cause)) {
        return yield* report(`the verb died: ${Cause.pretty(exit.cause)}`)
      }
      if (meanwhile !== undefined) yield* awaitBounded("the other caller", meanwhile, boundMillis)
      yield* finishAll(world)
      const closed = yield* bounded("closing the Jobs layer", Scope.close(scope, Exit.void), boundMillis)
      if (Exit.isFailure(closed)) return yield* report(`closing the Jobs layer failed: ${Cause.pretty(closed.cause)}`)
      const problems = checkEnd(world)
      if (problems.length > 0) return yield* report(problems.join("\n"))
      return endedFirst
    })
    return yield* run.pipe(
      Effect.catchTag("Stuck", (stuck: Stuck) => Effect.fail(report(stuck.message))),
      Effect.mapError((e) => e instanceof Broken ? e : report(String(e)))
    )
  }).pipe(Effect.provideService(References.MaxOpsBeforeYield, opsPerTurn))

describe("interrupting the caller of a verb leaves nothing stuck", () => {
  for (const c of cases) {
    it.live(c.name, () =>
      Effect.gen(function*() {
        let interrupted = 0
        for (const turns of turnCounts()) {
          const exit = yield* Effect.exit(trial(c, turns))
          if (Exit.isFailure(exit)) {
            const broken = Cause.findErrorOption(exit.cause)
            const problem = broken._tag === "Some" ? broken.value.problem : Cause.pretty(exit.cause)
            assert.fail(`${c.name}: caller interrupted after ${turns} turn(s):\n${problem}`)
          }
          // From here on the verb ends before any interruption: nothing new to see.
          if (exit.value) break
          interrupted++
        }
        // Not vacuous: the verb took more than one turn, so it was interrupted part-way.
        assert.isAbove(interrupted, 0, `${c.name}: the verb always ended in its first turn`)
      }), 60_000)
  }
})
