/**
 * The file drivers on real files, under os.tmpdir():
 *
 * - backup of a large file (1 GiB) against `cp` followed by `sync` of the copy,
 *   in the same rounds and with the same cache state: the source is read into
 *   the page cache once, and before every timed copy the previous copy is
 *   removed and the whole file system synced, so neither copy pays for the
 *   other's write-back. Both end with the copy on disk (the backup fsyncs its
 *   copy and the directory at commit). Every round times `cp` + `sync` and a
 *   backup at each candidate chunk size, the order rotating from round to
 *   round, so that a change in the machine's load or memory hits them all
 *   alike; each backup is compared with the `cp` of its own round. The figure
 *   is the best backup against the best `cp` (as the other figures take the
 *   best of their rounds), with the per-round ratios for the spread;
 * - the same per chunk size, for a few candidates (how the default chunk size
 *   was chosen);
 * - the achieved rate of a backup limited to 50 MiB/s, over 5 s of real time:
 *   bytes / time from the start, and the slope of progress sampled every 20 ms.
 */
import { NodeServices } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { randomFillSync } from "node:crypto"
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as FileDrivers from "../src/drivers/layer.ts"
import * as Jobs from "../src/Jobs.ts"
import * as JobStore from "../src/JobStore.ts"
import { elapsedNs, now, progress, round } from "./measure.ts"

const MiB = 1024 * 1024

export interface FileDriverOptions {
  /** Size of the copied file in bytes (1 GiB). */
  readonly fileBytes: number
  /** Chunk sizes to measure, in bytes (the default one is added if missing). */
  readonly chunkSizes: ReadonlyArray<number>
  /** Timed rounds: each times cp + sync and a backup per chunk size. */
  readonly rounds: number
  /**
   * More timings of the default backup without and with checkpoints, in pairs
   * whose order alternates: a cost of a few percent is below one copy's noise
   * on a shared disk, so its best times need more samples than the rounds give.
   */
  readonly checkpointPairs?: number | undefined
  /**
   * Seconds of idling before each timed copy (default 0). On a virtual machine
   * that hands freed memory back to its host (virtio-balloon free page
   * reporting), a copy made right after the previous one was removed gets that
   * one's page-cache memory back; after a few idle seconds it gets memory the
   * host must fault in again, as a backup on a machine that was idle does.
   */
  readonly settleSeconds?: number | undefined
  /** The rate-limit check: speed (bytes/s) and how long to watch (seconds). */
  readonly rateBytesPerSecond: number
  readonly rateSeconds: number
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The slope of the least-squares line through `[x, y]` points. */
const slope = (points: ReadonlyArray<readonly [number, number]>): number => {
  const n = points.length
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  let sxy = 0
  let sxx = 0
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my)
    sxx += (x - mx) * (x - mx)
  }
  return sxy / sxx
}

/** Flushes every dirty page of every file system. */
const syncAll = () => execFileSync("sync")

const writeSource = (path: string, bytes: number) => {
  const block = Buffer.allocUnsafe(4 * MiB)
  randomFillSync(block)
  const fd = fs.openSync(path, "w")
  for (let written = 0, i = 0; written < bytes; i++) {
    block.writeUInt32LE(i, 0) // no two blocks alike
    const n = Math.min(block.length, bytes - written)
    fs.writeSync(fd, block, 0, n)
    written += n
  }
  fs.closeSync(fd)
  syncAll()
  execFileSync("cat", [path], { stdio: ["ignore", "ignore", "inherit"] }) // into the page cache
}

/** Seconds taken by `cp source target` then `sync target`. */
const cpAndSync = (source: string, target: string): number => {
  const start = now()
  execFileSync("cp", [source, target])
  execFileSync("sync", [target])
  return elapsedNs(start) / 1e9
}

const driversLayer = (chunkSize: number) =>
  FileDrivers.layerWith({ chunkSize }).pipe(Layer.provideMerge(Layer.mergeAll(Jobs.layer, NodeServices.layer)))

/** Seconds taken by one backup job, from create to its conclusion (the copy committed). */
const backupOnce = (jobs: Jobs.JobsService, source: string, target: string, id: string) =>
  Effect.gen(function*() {
    const start = now()
    const job = yield* Effect.orDie(jobs.run({ type: "backup", id, params: { source, target } }))
    const outcome = yield* Effect.orDie(jobs.awaitOutcome(job))
    if (outcome._tag !== "Succeeded") return yield* Effect.die(new Error(`backup ${outcome._tag}`))
    return elapsedNs(start) / 1e9
  })

/** Runs `f` with a `Jobs` carrying the file drivers at this chunk size (closed afterwards). */
const withJobs = <A>(chunkSize: number, f: (jobs: Jobs.JobsService) => Effect.Effect<A>) =>
  Effect.flatMap(Effect.service(Jobs.Jobs), f).pipe(Effect.provide(driversLayer(chunkSize)))

/** A `Jobs` carrying the file drivers at this chunk size, open until the scope closes. */
const jobsFor = (chunkSize: number) =>
  Effect.map(Layer.build(driversLayer(chunkSize)), (context) => Context.get(context, Jobs.Jobs))

/** The file drivers on a durable engine (the memory store): backups record a checkpoint every 64 MiB. */
const durableJobs = (chunkSize: number) =>
  Effect.gen(function*() {
    const layer = FileDrivers.layerWith({ chunkSize }).pipe(
      Layer.provideMerge(Layer.mergeAll(Jobs.layerDurable().pipe(Layer.provide(JobStore.memory)), NodeServices.layer)),
      Layer.orDie
    )
    const jobs = Context.get(yield* Layer.build(layer), Jobs.Jobs)
    yield* jobs.recover
    return jobs
  })

const mibPerSecond = (bytes: number, seconds: number) => bytes / MiB / seconds

const removeAndSync = (...paths: ReadonlyArray<string>) => {
  for (const p of paths) fs.rmSync(p, { force: true })
  syncAll()
}

export const fileDrivers = (options: FileDriverOptions) =>
  Effect.acquireUseRelease(
    Effect.sync(() => fs.mkdtempSync(join(tmpdir(), "effect-jobs-bench-"))),
    (dir) =>
      Effect.scoped(Effect.gen(function*() {
        const source = join(dir, "source.bin")
        const target = join(dir, "backup.bin")
        const cpTarget = join(dir, "cp.bin")
        const mib = options.fileBytes / MiB
        progress(`file drivers: writing a ${mib} MiB source under ${tmpdir()}`)
        writeSource(source, options.fileBytes)

        // Warm-up (untimed): first use of page-cache memory and of the code paths.
        cpAndSync(source, cpTarget)
        removeAndSync(cpTarget)
        yield* withJobs(FileDrivers.defaultChunkSize, (jobs) => backupOnce(jobs, source, target, "warmup"))
        removeAndSync(target)

        // Every round: cp + sync and a backup per chunk size, in an order that rotates from round to round.
        const chunkSizes = options.chunkSizes.includes(FileDrivers.defaultChunkSize)
          ? options.chunkSizes
          : [...options.chunkSizes, FileDrivers.defaultChunkSize]
        const jobsPerChunk = yield* Effect.forEach(chunkSizes, jobsFor)
        const checkpointing = yield* durableJobs(FileDrivers.defaultChunkSize)
        type Candidate = {
          readonly label: string
          /** Seconds taken by the copy of this round. */
          readonly copy: (round: number) => Effect.Effect<number>
          readonly path: string
        }
        const candidates: Array<Candidate> = [
          { label: "cp + sync", copy: () => Effect.sync(() => cpAndSync(source, cpTarget)), path: cpTarget },
          ...chunkSizes.map((chunkSize, i) => ({
            label: `backup (${chunkSize / 1024} KiB chunks)`,
            copy: (round: number) => backupOnce(jobsPerChunk[i]!, source, target, `b${round}`),
            path: target
          })),
          {
            label: "backup with checkpoints",
            copy: (round: number) => backupOnce(checkpointing, source, target, `c${round}`),
            path: target
          }
        ]
        const settle = options.settleSeconds ?? 0
        progress(
          `file drivers: ${options.rounds} rounds of cp + sync and a backup per chunk size` +
            (settle > 0 ? `, ${settle} s idle before each copy` : "")
        )
        const seconds = candidates.map(() => [] as Array<number>)
        for (let r = 0; r < options.rounds; r++) {
          for (let k = 0; k < candidates.length; k++) {
            const i = (k + r) % candidates.length
            if (settle > 0) yield* Effect.sleep(`${settle} seconds`)
            seconds[i]!.push(yield* candidates[i]!.copy(r))
            removeAndSync(candidates[i]!.path)
          }
          progress(
            `file drivers round ${r + 1}/${options.rounds}: ` +
              candidates.map((c, i) => `${c.label} ${round(mib / seconds[i]![r]!, 0)} MiB/s`).join(", ")
          )
        }
        const cpSeconds = seconds[0]!
        /** A candidate's figures: best and median throughput, and its ratio to the cp + sync of each round. */
        const figures = (i: number) => {
          const ratios = seconds[i]!.map((s, r) => cpSeconds[r]! / s)
          return {
            bestMiBps: round(mibPerSecond(options.fileBytes, Math.min(...seconds[i]!)), 0),
            medianMiBps: round(mibPerSecond(options.fileBytes, median(seconds[i]!)), 0),
            ratioPerRound: ratios.map((x) => round(x, 2)),
            medianRatio: round(median(ratios), 2)
          }
        }
        const chunks = chunkSizes.map((chunkSize, i) => ({ chunkKiB: chunkSize / 1024, ...figures(i + 1) }))
        const defaultIndex = 1 + chunkSizes.indexOf(FileDrivers.defaultChunkSize)
        const backup = figures(defaultIndex)
        const baseline = figures(0)
        const ratio = round(Math.min(...cpSeconds) / Math.min(...seconds[defaultIndex]!), 2)
        const checkpointIndex = candidates.length - 1
        const pairs = options.checkpointPairs ?? 0
        const without = [...seconds[defaultIndex]!]
        const withCheckpoints = [...seconds[checkpointIndex]!]
        if (pairs > 0) progress(`file drivers: ${pairs} more pairs of backups without and with checkpoints`)
        for (let p = 0; p < pairs; p++) {
          const order = p % 2 === 0 ? [defaultIndex, checkpointIndex] : [checkpointIndex, defaultIndex]
          for (const i of order) {
            const taken = yield* candidates[i]!.copy(options.rounds + p)
            ;(i === defaultIndex ? without : withCheckpoints).push(taken)
            removeAndSync(candidates[i]!.path)
          }
        }
        const checkpointCost = Math.min(...withCheckpoints) / Math.min(...without) - 1

        progress(`file drivers: rate limit at ${options.rateBytesPerSecond / MiB} MiB/s for ${options.rateSeconds} s`)
        const rate = yield* withJobs(FileDrivers.defaultChunkSize, (jobs) =>
          Effect.gen(function*() {
            const start = now()
            const job = yield* Effect.orDie(
              jobs.run({ type: "backup", id: "rate", params: { source, target }, speed: options.rateBytesPerSecond })
            )
            // Progress sampled every 20 ms; the slope of the least-squares line is the steady rate,
            // free of the first slice's head start and of the chunk-sized steps at the window's ends.
            const samples: Array<readonly [number, number]> = []
            while (elapsedNs(start) < options.rateSeconds * 1e9) {
              samples.push([elapsedNs(start) / 1e9, job.progress.current])
              yield* Effect.sleep(20)
            }
            const seconds = elapsedNs(start) / 1e9
            const bytes = job.progress.current
            yield* Effect.orDie(jobs.cancelSync(job, { force: true }))
            return { seconds, bytes, slope: slope(samples), samples: samples.length }
          }))
        removeAndSync(target)
        const achieved = rate.bytes / rate.seconds

        return {
          fileMiB: mib,
          defaultChunkKiB: FileDrivers.defaultChunkSize / 1024,
          /** Backup throughput per chunk size (best and median of the rounds), and its ratio to each round's cp + sync. */
          chunkSizes: chunks,
          backupVsCp: {
            method: `Backup of a ${mib} MiB page-cached source (jobs.run to its Succeeded outcome: the copy fsynced and ` +
              `committed, its directory fsynced) against cp then sync of the copy, ${options.rounds} rounds; every round ` +
              `times cp + sync and a backup at each of ${chunkSizes.length} chunk sizes, the order rotating, each copy ` +
              `after the previous one was removed and the file system synced` +
              (settle > 0 ? ` and ${settle} s of idling` : "") +
              `. Ratio: the best backup (${FileDrivers.defaultChunkSize / 1024} KiB chunks) over the best cp + sync; ` +
              `ratioPerRound: each backup over the cp + sync of its round.`,
            rounds: options.rounds,
            settleSeconds: settle,
            /** The best of the rounds, backup and cp + sync. */
            backupMiBps: backup.bestMiBps,
            cpSyncMiBps: baseline.bestMiBps,
            backup: { chunkKiB: FileDrivers.defaultChunkSize / 1024, ...backup },
            baseline: { what: "cp source copy; sync copy", bestMiBps: baseline.bestMiBps, medianMiBps: baseline.medianMiBps },
            ratio,
            target: "ratio >= 0.9",
            meetsTarget: ratio >= 0.9
          },
          checkpoints: {
            method: `The same backup (${FileDrivers.defaultChunkSize / 1024} KiB chunks) on a durable engine ` +
              `(Jobs.layerDurable on JobStore.memory), which fsyncs the copy and records a checkpoint every ` +
              `${FileDrivers.defaultCheckpointInterval / MiB} MiB, in the same rounds and in ${pairs} more pairs ` +
              `(without and with, the order alternating); cost = best time with checkpoints / best time without - 1.`,
            samples: without.length,
            withCheckpointsMiBps: round(mibPerSecond(options.fileBytes, Math.min(...withCheckpoints)), 0),
            withoutMiBps: round(mibPerSecond(options.fileBytes, Math.min(...without)), 0),
            medianCostPercent: round((median(withCheckpoints) / median(without) - 1) * 100, 2),
            costPercent: round(checkpointCost * 100, 2),
            target: "costPercent <= 2",
            meetsTarget: checkpointCost <= 0.02
          },
          rateLimit: {
            setMiBps: options.rateBytesPerSecond / MiB,
            seconds: round(rate.seconds, 2),
            copiedMiB: round(rate.bytes / MiB, 1),
            /** Bytes copied / time, from the start (includes the first slice's head start). */
            achievedMiBps: round(achieved / MiB, 2),
            errorPercent: round(((achieved - options.rateBytesPerSecond) / options.rateBytesPerSecond) * 100, 2),
            /** The slope of progress over time (least squares over samples every 20 ms). */
            steadyMiBps: round(rate.slope / MiB, 2),
            steadyErrorPercent: round(((rate.slope - options.rateBytesPerSecond) / options.rateBytesPerSecond) * 100, 2)
          }
        }
      })),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
