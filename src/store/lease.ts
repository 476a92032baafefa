/**
 * The store's lease: one owner at a time. The owner's row names it (id, pid,
 * host), and the owner renews it on the Effect `Clock` while it holds the
 * store; a lease that was not renewed in time has expired, and the next owner
 * may take the store over (the previous one crashed or stalled). Every commit
 * checks the lease in its own database transaction, so an owner that lost the
 * lease can no longer write.
 *
 * Times are the owners' clocks, not the database's: owners on different hosts
 * need clocks that agree to well within the lease's length.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect } from "effect"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import type { LeaseHolder, StoreLeaseLost } from "./errors.ts"

/**
 * Who asks for the store.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeaseOwner {
  /** Unique per process run: a restarted server is a new owner. */
  readonly id: string
  readonly pid: number
  readonly host: string
}

/**
 * This process as an owner, with a fresh random id unless one is given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const processOwner = (id: string = randomUUID()): LeaseOwner => ({ id, pid: process.pid, host: hostname() })

/**
 * Whether the lease's holder is known to have died: a process of this host
 * that no longer exists (killed, or crashed) renews nothing, so its lease is
 * over before it expires, and a restarted server need not wait for it. A
 * holder on another host, or a process id that exists (even reused by
 * another program), can only expire.
 */
export const holderGone = (holder: LeaseHolder): boolean => {
  if (holder.host !== hostname() || holder.pid === process.pid) return false
  try {
    process.kill(holder.pid, 0)
    return false
  } catch (error) {
    return (error as { readonly code?: unknown }).code === "ESRCH"
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LeaseOptions {
  /** How long the lease lasts without a heartbeat (default 15 seconds). */
  readonly ttl?: Duration.Input | undefined
  /** How often it is renewed (default a third of `ttl`); must be shorter than `ttl`. */
  readonly heartbeat?: Duration.Input | undefined
}

/** The lease's timing, in milliseconds. */
export interface LeaseTiming {
  readonly ttl: number
  readonly heartbeat: number
}

const defaultTtl = Duration.seconds(15)

/** The options with their defaults; a heartbeat that is not shorter than the lease is a programming error. */
export const timing = (options: LeaseOptions | undefined): LeaseTiming => {
  const ttl = Duration.toMillis(Duration.fromInputUnsafe(options?.ttl ?? defaultTtl))
  const heartbeat = options?.heartbeat === undefined
    ? ttl / 3
    : Duration.toMillis(Duration.fromInputUnsafe(options.heartbeat))
  if (!(ttl > 0) || !(heartbeat > 0) || heartbeat >= ttl) {
    throw new Error(`A lease of ${ttl} ms needs a heartbeat shorter than it and above 0, not ${heartbeat} ms`)
  }
  return { ttl, heartbeat }
}

/**
 * Renews the lease every `heartbeat` until interrupted (when the store's
 * scope closes). A failed renewal is logged and tried again at the next beat,
 * while the lease may still be saved; a lost lease is logged and ends it.
 *
 * The beats keep to the clock: a renewal that took long (a slow database)
 * does not push the next one back, and one that is overdue goes at once
 * (once, however many beats it missed).
 */
export const heartbeats = <E extends { readonly message: string }>(
  renew: Effect.Effect<void, E | StoreLeaseLost>,
  every: LeaseTiming
): Effect.Effect<void> =>
  Effect.gen(function*() {
    let due = (yield* Clock.currentTimeMillis) + every.heartbeat
    while (true) {
      const now = yield* Clock.currentTimeMillis
      if (due > now) yield* Effect.sleep(Duration.millis(due - now))
      due = Math.max(due, now) + every.heartbeat
      const lost = yield* renew.pipe(
        Effect.as(false),
        Effect.catch((error) =>
          "_tag" in error && error._tag === "StoreLeaseLost"
            ? Effect.as(Effect.logError(error.message), true)
            : Effect.as(Effect.logWarning(`Renewing the job store's lease failed, retrying: ${error.message}`), false)
        )
      )
      if (lost) return
    }
  })
