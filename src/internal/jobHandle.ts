/**
 * The `JobHandle` a driver gets: a thin view over the job's record. Its
 * effects are made on first use (the pause point, which drivers call in every
 * loop, once per job), which keeps a short job and a parked one small.
 * @internal
 */
import { type Duration, Effect, type Schema } from "effect"
import type { JobHandle } from "../JobHandle.ts"
import type { JobStatus } from "../JobStatus.ts"
import type { JobTxn } from "../JobTxn.ts"
import type { JobRecord } from "./jobRecord.ts"
import { finished, withInlineStep } from "./inlineStep.ts"
import { enterUnsafe, makePausePoint, makeYield, sleepStep } from "./pausing.ts"

export class JobHandleImpl implements JobHandle {
  readonly job: JobRecord
  private pausePointEffect: Effect.Effect<void> | undefined = undefined
  private yieldEffect: Effect.Effect<void> | undefined = undefined
  private lastUpdate: Effect.Effect<void> | undefined = undefined
  private lastUpdateDone = 0

  constructor(job: JobRecord) {
    this.job = job
  }

  get pausePoint(): Effect.Effect<void> {
    return (this.pausePointEffect ??= makePausePoint(this.job))
  }

  get id(): string | undefined {
    return this.job.id
  }
  get type(): string {
    return this.job.type
  }
  get txn(): JobTxn {
    return this.job.txn
  }
  get yield(): Effect.Effect<void> {
    return (this.yieldEffect ??= makeYield(this.job, this.pausePoint))
  }
  sleep(duration: Duration.Input): Effect.Effect<void> {
    return Effect.suspend(() => sleepStep(this.job, duration, this.pausePoint))
  }
  get enter(): Effect.Effect<void> {
    return Effect.sync(() => enterUnsafe(this.job))
  }
  get isCancelled(): Effect.Effect<boolean> {
    return Effect.sync(() => this.job.isCancelled)
  }
  get cancelRequested(): Effect.Effect<boolean> {
    return Effect.sync(() => this.job.cancelRequested)
  }
  get status(): Effect.Effect<JobStatus> {
    return Effect.sync(() => this.job.status)
  }
  get speed(): Effect.Effect<number> {
    return Effect.sync(() => this.job.speed)
  }
  update(done: number): Effect.Effect<void> {
    // A copy loop reports the same amount chunk after chunk: the last update is reused (an
    // Effect is a description, and running it again adds `done` again).
    if (this.lastUpdate !== undefined && this.lastUpdateDone === done) return this.lastUpdate
    this.lastUpdateDone = done
    return (this.lastUpdate = this.makeUpdate(done))
  }
  private makeUpdate(done: number): Effect.Effect<void> {
    const job = this.job
    return withInlineStep(
      Effect.sync(() => {
        job.current += done
      }),
      () => {
        job.current += done
        return finished
      }
    )
  }
  setRemaining(remaining: number): Effect.Effect<void> {
    return Effect.sync(() => {
      this.job.total = this.job.current + remaining
    })
  }
  increaseRemaining(delta: number): Effect.Effect<void> {
    return Effect.sync(() => {
      this.job.total += delta
    })
  }
  checkpoint(data: Schema.Json): Effect.Effect<void> {
    return Effect.sync(() => {
      const job = this.job
      const persistence = job.engine.persistence
      if (persistence === undefined || job.id === undefined) return
      job.checkpointData = data
      persistence.checkpointed(job)
    })
  }
  get keepsCheckpoints(): boolean {
    return this.job.engine.persistence !== undefined && this.job.id !== undefined
  }
  get resumedFrom(): Schema.Json | undefined {
    return this.job.resumedFrom
  }
  get transitionToReady(): Effect.Effect<void> {
    return Effect.sync(() => {
      const job = this.job
      job.transition("ready", (id) => ({ _tag: "Ready", ...job.progressPayload(id) }))
    })
  }
}
