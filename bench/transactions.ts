/**
 * Transaction cost: one transaction of N no-op jobs (create all, start all, await
 * the outcome) for growing N — linear bookkeeping means time per job stays flat —
 * and the abort of a 10k-member transaction when one member fails.
 */
import { Effect, Schema } from "effect"
import * as JobDriver from "../src/JobDriver.ts"
import * as Jobs from "../src/Jobs.ts"
import * as JobTxn from "../src/JobTxn.ts"
import { collectGarbage } from "./heap.ts"
import { elapsedNs, now, progress, round } from "./measure.ts"

/** `fail: true` fails once every other member is running; others wait (yield) until cancelled or entered. */
const MemberDriver = JobDriver.make({
  type: "member",
  params: Schema.Struct({ mode: Schema.Literals(["noop", "fail", "wait"]) }),
  make: (params, job) =>
    Effect.succeed({
      run: params.mode === "noop"
        ? Effect.void
        : params.mode === "wait"
        ? job.yield
        : Effect.andThen(job.yield, Effect.fail("member failed"))
    })
})

const oneTransaction = (jobs: Jobs.JobsService, n: number) =>
  Effect.gen(function*() {
    yield* Effect.promise(collectGarbage)
    const start = now()
    const txn = yield* JobTxn.make
    for (let i = 0; i < n; i++) {
      yield* Effect.orDie(jobs.create({ type: "member", id: `m${i}`, txn, params: { mode: "noop" } }))
    }
    for (const member of txn.members) yield* Effect.orDie(jobs.start(member))
    const outcome = yield* JobTxn.awaitOutcome(txn)
    if (outcome._tag !== "Committed") return yield* Effect.die(new Error(`transaction ${outcome._tag}`))
    return elapsedNs(start)
  })

const abortOfTransaction = (jobs: Jobs.JobsService, n: number) =>
  Effect.gen(function*() {
    const txn = yield* JobTxn.make
    for (let i = 0; i < n - 1; i++) {
      yield* Effect.orDie(jobs.create({ type: "member", id: `w${i}`, txn, params: { mode: "wait" } }))
    }
    const failing = yield* Effect.orDie(jobs.create({ type: "member", id: "failing", txn, params: { mode: "fail" } }))
    for (const member of txn.members) yield* Effect.orDie(jobs.start(member))
    yield* Effect.promise(collectGarbage)
    const start = now()
    yield* Effect.orDie(jobs.enter(failing))
    const outcome = yield* JobTxn.awaitOutcome(txn)
    const ns = elapsedNs(start)
    if (outcome._tag !== "Aborted" || txn.members.some((m) => m.status !== "null")) {
      return yield* Effect.die(new Error("the transaction did not abort every member"))
    }
    return ns
  })

export interface TransactionOptions {
  readonly sizes: ReadonlyArray<number>
  readonly abortSize: number
}

export const transactions = (options: TransactionOptions) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    yield* jobs.register(MemberDriver)
    yield* oneTransaction(jobs, Math.min(1_000, options.sizes[0]!)) // warm-up
    const perSize: Record<string, { totalMs: number; nsPerJob: number }> = {}
    for (const n of options.sizes) {
      progress(`transactions: one transaction of ${n} jobs`)
      let best = Infinity
      for (let r = 0; r < (n >= 100_000 ? 2 : 3); r++) best = Math.min(best, yield* oneTransaction(jobs, n))
      perSize[String(n)] = { totalMs: round(best / 1e6, 1), nsPerJob: round(best / n, 0) }
    }
    const [small, large] = [options.sizes.at(-2)!, options.sizes.at(-1)!]
    progress(`transactions: abort of ${options.abortSize} members`)
    const abortNs = yield* abortOfTransaction(jobs, options.abortSize)
    return {
      method:
        "One JobTxn of N no-op jobs: create every member, start every member, await JobTxn.awaitOutcome (Committed); best of 3 (2 for 100k), GC before each. Abort: N-1 members yielded until entered plus one that fails when entered; timed from entering the failing member until the transaction's outcome is Aborted and every member is dismissed.",
      perSize,
      scaling: {
        of: `t(${large}) / t(${small})`,
        ratio: round(perSize[String(large)]!.totalMs / perSize[String(small)]!.totalMs, 2),
        linearWouldBe: round(large / small, 2),
        target: `<= ${round((large / small) * 1.1, 1)}`,
        meetsTarget: perSize[String(large)]!.totalMs / perSize[String(small)]!.totalMs <= (large / small) * 1.1
      },
      abort: {
        members: options.abortSize,
        msUntilAllConcluded: round(abortNs / 1e6, 1),
        nsPerMember: round(abortNs / options.abortSize, 0)
      }
    }
  }).pipe(Effect.provide(Jobs.layer))
