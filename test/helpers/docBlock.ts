/**
 * Docs that show a source file verbatim mark the code block with
 * `<!-- source: PATH -->` (the whole file) or `<!-- source: PATH#NAME -->` (the
 * part of the file between `// #region NAME` and `// #endregion NAME`); these
 * read the repository's files and the block so a test can compare them.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"

const repoRoot = new URL("../../", import.meta.url)

/** A file of the repository, by its path from the repository's root. */
export const readRepoFile = (path: string): string => readFileSync(new URL(path, repoRoot), "utf8")

/** Whether the repository has a file at this path (from its root). */
export const repoFileExists = (path: string): boolean => existsSync(new URL(path, repoRoot))

/** The body of the `ts` code block that follows `<!-- source: NAME -->` in `doc`. */
export const shownBlock = (doc: string, name: string): string => {
  const marker = doc.indexOf(`<!-- source: ${name} -->`)
  if (marker < 0) throw new Error(`no code block is marked as ${name}`)
  const open = doc.indexOf("```ts\n", marker) + 6
  return doc.slice(open, doc.indexOf("\n```", open) + 1)
}

/** Every `<!-- source: … -->` label in `doc`, in order. */
export const sourceLabels = (doc: string): Array<string> =>
  [...doc.matchAll(/<!-- source: (.+?) -->/g)].map((match) => match[1]!)

/** The text between `// #region NAME` and `// #endregion NAME` in `source`. */
export const regionOf = (source: string, name: string): string => {
  const open = source.indexOf(`// #region ${name}\n`)
  const close = source.indexOf(`// #endregion ${name}\n`)
  if (open < 0 || close < open) throw new Error(`no region ${name}`)
  return source.slice(open + `// #region ${name}\n`.length, close)
}

/**
 * Source as the docs show it: imported from the package, not from `src/`, and
 * the examples imported from beside the reader's own file.
 */
export const asPublished = (source: string): string =>
  source
    .replaceAll(/"(?:\.\.\/)+src\/index\.ts"/g, "\"effect-jobs\"")
    .replaceAll(/"(?:\.\.\/)+src\/testing\.ts"/g, "\"effect-jobs/testing\"")
    .replaceAll(/"\.\.\/\.\.\/examples\/([A-Za-z]+\.ts)"/g, "\"./$1\"")

/** What the block labelled `label` should show: the whole file, or one region of it, as published. */
export const labelledSource = (label: string): string => {
  const [path, region] = label.split("#") as [string, string | undefined]
  const source = readRepoFile(path)
  return asPublished(region === undefined ? source : regionOf(source, region))
}

/** README.md and every docs/*.md, with their text. */
export const docs = (): Array<{ readonly path: string; readonly text: string }> => [
  { path: "README.md", text: readRepoFile("README.md") },
  ...readdirSync(new URL("docs/", repoRoot))
    .filter((name) => name.endsWith(".md"))
    .map((name) => ({ path: `docs/${name}`, text: readRepoFile(`docs/${name}`) }))
]
