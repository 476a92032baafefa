/**
 * `effect-jobs serve --store`: where the server keeps its jobs and events.
 *
 * - `sqlite:PATH` — a SQLite file (created if missing). The default is
 *   `effect-jobs.db` beside the Unix socket (in the current directory when the
 *   server listens on TCP only).
 * - `postgres://…` (or `postgresql://…`) — a Postgres database, for servers
 *   that take over from one another.
 * - `memory` — nothing outlives the process (QEMU's own behaviour).
 */
import { Effect, Layer, Option, Path } from "effect"
import { Flag } from "effect/cli"
import * as JobStore from "../JobStore.ts"

export type StoreSpec =
  | { readonly _tag: "Memory" }
  | { readonly _tag: "Sqlite"; readonly path: string }
  | { readonly _tag: "Postgres"; readonly url: string }

export const storeFileName = "effect-jobs.db"

/** `--store SPEC`, checked as it is parsed. */
export const storeFlag = Flag.String("store").pipe(
  Flag.withMetavar("SPEC"),
  Flag.withDescription(
    `Keep jobs and events in sqlite:PATH (default: ${storeFileName} beside the socket), postgres://USER@HOST/DB, ` +
      "or memory (nothing survives a restart)"
  ),
  Flag.filter(
    (text) => parseStore(text) !== undefined,
    (text) => `sqlite:PATH, postgres://… or memory, not '${text}'`
  ),
  Flag.optional
)

export const parseStore = (text: string): StoreSpec | undefined => {
  if (text === "memory") return { _tag: "Memory" }
  if (text.startsWith("sqlite:") && text.length > "sqlite:".length) return { _tag: "Sqlite", path: text.slice(7) }
  if (/^postgres(ql)?:\/\/./.test(text)) return { _tag: "Postgres", url: text }
  return undefined
}

/** The store `--store` names, or the default: SQLite beside the socket (or in the current directory). */
export const resolveStore = (
  flag: Option.Option<string>,
  socket: string | undefined
): Effect.Effect<StoreSpec, never, Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    if (Option.isSome(flag)) {
      const spec = parseStore(flag.value)!
      return spec._tag === "Sqlite" ? { _tag: "Sqlite", path: path.resolve(spec.path) } : spec
    }
    const dir = socket === undefined ? path.resolve(".") : path.dirname(path.resolve(socket))
    return { _tag: "Sqlite", path: path.join(dir, storeFileName) }
  })

/** How the server names its store in its start-up lines. */
export const describeStore = (spec: StoreSpec, location: string): string =>
  spec._tag === "Memory" ? "memory (nothing survives a restart)" : location

/** The store's layer. */
export const layerFor = (
  spec: StoreSpec
): Layer.Layer<JobStore.JobStore, JobStore.StoreCorrupt | JobStore.StoreUnavailable> => {
  switch (spec._tag) {
    case "Memory":
      return JobStore.memory
    case "Sqlite":
      return JobStore.sqlite({ filename: spec.path })
    case "Postgres":
      return JobStore.postgres({ url: spec.url })
  }
}
