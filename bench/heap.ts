/**
 * Heap measurement: a forced, complete garbage collection followed by a reading
 * of `heapUsed`. Works with or without `node --expose-gc`: without the flag the
 * collector is exposed at runtime through V8's flags.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

const exposeGc = (): (() => void) => {
  const existing = (globalThis as { gc?: () => void }).gc
  if (typeof existing === "function") return existing
  setFlagsFromString("--expose_gc")
  return runInNewContext("gc") as () => void
}

const gc = exposeGc()

/**
 * `heapUsed` after full collections, taken on a fresh macrotask so that no
 * caller's stack keeps garbage alive.
 */
export const settledHeapUsed = async (): Promise<number> => {
  await new Promise<void>((resolve) => setImmediate(resolve))
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** A full collection between measurements, so one does not pay for another's garbage. */
export const collectGarbage = async (): Promise<void> => {
  await settledHeapUsed()
}
