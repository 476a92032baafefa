/**
 * The V8 options the server process runs with.
 *
 * V8 sizes its young generation by itself: when many objects outlive a few
 * collections in a short time — a burst of connections, each holding its
 * state for a while — it doubles it, up to 64 MB a half, and keeps it. A
 * flood of clients that the connection limits turn away would then still
 * cost the server tens of megabytes for good, in no part of it a limit can
 * bound. A young generation of at most 16 MB a half bounds that; it costs a
 * little more collecting under heavy allocation, which a job server, whose
 * work is in its drivers' I/O, does not feel.
 *
 * The same options are written out where a process is started, and must
 * stay equal to these (a test compares them): the shebang of
 * `src/cli/main.ts` (so `effect-jobs` runs with them) and the `start` script
 * of package.json. A program that embeds the server (`Qmp.serve`) gets them
 * only if it is started with them.
 */
export const serverNodeOptions: ReadonlyArray<string> = ["--max-semi-space-size=16"]
