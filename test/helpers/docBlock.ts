/**
 * Docs that show a source file verbatim mark the code block with
 * `<!-- source: NAME -->`; these read the repository's files and the block so a
 * test can compare them.
 */
import { readFileSync } from "node:fs"

/** A file of the repository, by its path from the repository's root. */
export const readRepoFile = (path: string): string =>
  readFileSync(new URL(`../../${path}`, import.meta.url), "utf8")

/** The body of the `ts` code block that follows `<!-- source: NAME -->` in `doc`. */
export const shownBlock = (doc: string, name: string): string => {
  const marker = doc.indexOf(`<!-- source: ${name} -->`)
  if (marker < 0) throw new Error(`no code block is marked as ${name}`)
  const open = doc.indexOf("```ts\n", marker) + 6
  return doc.slice(open, doc.indexOf("\n```", open) + 1)
}

/** An example file as the docs show it: imported from the package, not from `src/`. */
export const asPublished = (source: string): string => source.replaceAll("\"../src/index.ts\"", "\"effect-jobs\"")
