/**
 * A countdown job: the worked example of docs/writing-a-driver.md.
 *
 * It counts down from `from` to zero, one tick every `tickMillis`, announcing
 * each number; at zero it goes READY and holds until it is completed (launch)
 * or soft-cancelled (stand down). Finalization polls go/no-go, then announces
 * the launch (commit) or the scrub (abort), and always safes the pad (clean).
 */
import { Clock, Console, Context, Effect, Layer, Schema } from "effect"
import { JobDriver, type Jobs, JobStatus } from "../src/index.ts"

/** The announcer refused a message. */
export class AnnounceError extends Schema.TaggedError<AnnounceError>()("AnnounceError", {
  line: Schema.String
}) {
  override get message() {
    return `announcer refused: ${this.line}`
  }
}

/** Where the countdown speaks. A requirement of the driver, provided by a layer. */
export class Announcer extends Context.Service<Announcer, {
  readonly announce: (line: string) => Effect.Effect<void, AnnounceError>
}>()("examples/Announcer") {
  /** Announces on the console. */
  static readonly console: Layer.Layer<Announcer> = Layer.succeed(
    Announcer,
    Announcer.of({ announce: (line) => Console.log(line) })
  )
}

export const CountdownParams = Schema.Struct({
  /** What is being launched; every announcement starts with it. */
  label: Schema.String,
  /** The number to count down from. */
  from: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  /** The length of one tick (default: one second). */
  tickMillis: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThan(0)))
})

export type CountdownParams = typeof CountdownParams.Type

export const CountdownDriver = JobDriver.make({
  type: "countdown",
  params: CountdownParams,
  make: (params, job) =>
    Effect.gen(function*() {
      // Requirements are ordinary services; JobDriver.layer captured them at registration.
      const announcer = yield* Announcer
      const say = (text: string) => announcer.announce(`${params.label}: ${text}`)
      const tick = params.tickMillis ?? 1000
      // Set by `complete`, read by `run`. Each job gets its own copy: `make` runs once per job.
      let launch = false

      // Failing here fails `create` with JobSetupFailed (the job goes created → null).
      yield* say(`armed at T-${params.from}`)

      // `sleep` can return early (enter, a pause, a faster speed), so sleep until the
      // tick is really over. Time spent paused counts: a tick interrupted by a long
      // pause ends right after the resume.
      const oneTick = Effect.gen(function*() {
        const due = (yield* Clock.currentTimeMillis) + tick
        let now = yield* Clock.currentTimeMillis
        while (now < due) {
          yield* job.sleep(due - now)
          now = yield* Clock.currentTimeMillis
        }
      })

      const run = Effect.gen(function*() {
        yield* job.setRemaining(params.from)
        for (let left = params.from; left > 0; left--) {
          yield* say(`T-${left}`)
          yield* oneTick // a force cancel interrupts it; a pause parks in it
          yield* job.update(1)
        }
        yield* job.transitionToReady // once only: READY → READY is not a legal move
        yield* say("T-0, holding for launch")
        // Hold until `complete` sets the flag or a soft cancel arrives. `yield` is
        // woken by `enter`, and parks here (STANDBY) while the job is paused.
        while (!launch && !(yield* job.cancelRequested)) yield* job.yield
      })

      return {
        run,
        pause: say("hold"),
        resume: say("resume count"),
        // Before READY every cancel is hard; in READY a soft cancel means "stand down":
        // `run` returns normally and the job finishes without launching.
        cancel: (force: boolean) => Effect.map(job.status, (status) => force || !JobStatus.isReady(status)),
        complete: Effect.andThen(
          Effect.sync(() => {
            launch = true
          }),
          job.enter // wakes the hold loop; a no-op while the job is parked in STANDBY
        ),
        prepare: say("go/no-go poll"),
        commit: Effect.flatMap(job.cancelRequested, (stoodDown) => say(stoodDown ? "stood down" : "liftoff")),
        abort: say("scrubbed"),
        clean: say("pad safed")
      }
    })
})

/** The countdown job type, registered with `Jobs`; needs `Jobs` and an `Announcer`. */
export const layer: Layer.Layer<never, never, Jobs.Jobs | Announcer> = JobDriver.layer(CountdownDriver)
