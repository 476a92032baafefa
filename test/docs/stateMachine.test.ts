/**
 * docs/state-machine.md must show exactly the tables the engine runs on: the
 * mermaid diagram's edges are `JobStatus.transitions`, the verb table is
 * `JobVerb.acceptedIn`, and the status list is `JobStatus.all`. Each comparison
 * goes both ways (nothing missing, nothing extra), so editing either the doc or
 * the tables alone makes this test fail.
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import * as JobStatus from "../../src/JobStatus.ts"
import * as JobVerb from "../../src/JobVerb.ts"

const docPath = new URL("../../docs/state-machine.md", import.meta.url)
const doc = readFileSync(docPath, "utf8")

class DocParseError extends Error {}

/** The lines of the first fenced block whose info string is `lang`. */
const fencedBlock = (text: string, lang: string): Array<string> => {
  const lines = text.split("\n")
  const start = lines.findIndex((line) => line.trim() === "```" + lang)
  if (start < 0) throw new DocParseError(`no \`\`\`${lang} block`)
  const end = lines.findIndex((line, i) => i > start && line.trim() === "```")
  if (end < 0) throw new DocParseError(`unterminated \`\`\`${lang} block`)
  return lines.slice(start + 1, end)
}

const edgeLine = /^([A-Za-z_][\w-]*)\s*-->\s*([A-Za-z_][\w-]*)\s*(?::.*)?$/

/**
 * The edges of the mermaid state diagram, as `from -> to` strings. Strict: the
 * block must be a `stateDiagram-v2` and every other non-blank line must be an
 * edge or a `%%` comment, so a start marker (`[*]`), a note or a state that is
 * declared without an edge cannot slip past the comparison.
 */
export const diagramEdges = (text: string): Array<string> => {
  const [header, ...body] = fencedBlock(text, "mermaid").map((line) => line.trim()).filter((line) => line !== "")
  if (header !== "stateDiagram-v2") throw new DocParseError(`diagram header is '${header}'`)
  return body.filter((line) => !line.startsWith("%%")).map((line) => {
    const match = edgeLine.exec(line)
    if (match === null) throw new DocParseError(`not an edge: '${line}'`)
    return `${match[1]} -> ${match[2]}`
  })
}

const cells = (row: string): Array<string> => {
  const trimmed = row.trim()
  if (!trimmed.startsWith("|") || !trimmed.endsWith("|")) throw new DocParseError(`not a table row: '${row}'`)
  return trimmed.slice(1, -1).split("|").map((cell) => cell.trim())
}

/** The verb table: its column headers and, for each verb row, the statuses marked ✔. */
export const verbTable = (text: string): { columns: Array<string>; rows: Map<string, Array<string>> } => {
  const lines = text.split("\n")
  const headerAt = lines.findIndex((line) => /^\|\s*verb\s*\|\s*undefined\s*\|/.test(line))
  if (headerAt < 0) throw new DocParseError("no verb table")
  const columns = cells(lines[headerAt]!).slice(1)
  if (!/^\|(\s*-+\s*\|)+$/.test(lines[headerAt + 1]!.trim())) throw new DocParseError("verb table has no separator row")
  const rows = new Map<string, Array<string>>()
  for (let i = headerAt + 2; i < lines.length && lines[i]!.trim().startsWith("|"); i++) {
    const [first, ...marks] = cells(lines[i]!)
    const verb = first!.replace(/`/g, "")
    if (marks.length !== columns.length) {
      throw new DocParseError(`row '${verb}' has ${marks.length} cells for ${columns.length} columns`)
    }
    if (rows.has(verb)) throw new DocParseError(`verb '${verb}' appears twice`)
    rows.set(
      verb,
      marks.flatMap((mark, j) => {
        if (mark === "✔") return [columns[j]!]
        if (mark === "") return []
        throw new DocParseError(`row '${verb}', column '${columns[j]}': unexpected '${mark}'`)
      })
    )
  }
  return { columns, rows }
}

/** The statuses listed under "## Statuses" as "- `name` — …". */
export const listedStatuses = (text: string): Array<string> => {
  const section = text.split(/^## /m).find((part) => part.startsWith("Statuses"))
  if (section === undefined) throw new DocParseError("no '## Statuses' section")
  return [...section.matchAll(/^- `([^`]+)` — /gm)].map((match) => match[1]!)
}

/** Both directions of a set comparison. */
const difference = (documented: ReadonlyArray<string>, actual: ReadonlyArray<string>) => ({
  missingFromDoc: actual.filter((x) => !documented.includes(x)).sort(),
  extraInDoc: documented.filter((x) => !actual.includes(x)).sort()
})

const tableEdges = (): Array<string> =>
  JobStatus.all.flatMap((from) => JobStatus.transitions[from].map((to) => `${from} -> ${to}`))

const verbRows = (): Map<string, Array<string>> =>
  new Map(JobVerb.all.map((verb) => [verb, [...JobVerb.acceptedIn[verb]]]))

const compareVerbs = (documented: Map<string, Array<string>>, actual: Map<string, Array<string>>) => ({
  verbs: difference([...documented.keys()], [...actual.keys()]),
  cells: [...actual.keys()].flatMap((verb) => {
    const d = difference(documented.get(verb) ?? [], actual.get(verb)!)
    return d.missingFromDoc.length === 0 && d.extraInDoc.length === 0 ? [] : [{ verb, ...d }]
  })
})

const noDifference = { missingFromDoc: [], extraInDoc: [] }

describe("docs/state-machine.md", () => {
  it("lists every status once, and nothing else", () => {
    const listed = listedStatuses(doc)
    expect(new Set(listed).size).toBe(listed.length)
    expect(difference(listed, [...JobStatus.all])).toEqual(noDifference)
  })

  it("draws exactly the edges of JobStatus.transitions", () => {
    const edges = diagramEdges(doc)
    expect(new Set(edges).size).toBe(edges.length)
    expect(difference(edges, tableEdges())).toEqual(noDifference)
    expect(edges).toContain("aborting -> aborting")
  })

  it("has a verb table equal to JobVerb.acceptedIn", () => {
    const { columns, rows } = verbTable(doc)
    expect(columns).toEqual([...JobStatus.all])
    expect(compareVerbs(rows, verbRows())).toEqual({ verbs: noDifference, cells: [] })
  })

  // The comparisons above must be able to fail: feed them a doc that drifted.
  describe("detects drift", () => {
    it("a missing edge, an extra edge, a start marker", () => {
      const withoutEdge = doc.replace(/^\s*aborting --> aborting.*\n/m, "")
      expect(difference(diagramEdges(withoutEdge), tableEdges()).missingFromDoc).toEqual(["aborting -> aborting"])
      const withExtra = doc.replace("stateDiagram-v2\n", "stateDiagram-v2\n    paused --> aborting\n")
      expect(difference(diagramEdges(withExtra), tableEdges()).extraInDoc).toEqual(["paused -> aborting"])
      const withStart = doc.replace("stateDiagram-v2\n", "stateDiagram-v2\n    [*] --> undefined\n")
      expect(() => diagramEdges(withStart)).toThrow(DocParseError)
    })

    it("a missing or extra ✔, a missing verb row", () => {
      const lines = doc.split("\n")
      const at = lines.findIndex((line) => line.startsWith("| `complete` |"))
      const complete = cells(lines[at]!)
      const withoutStandby = [...lines]
      withoutStandby[at] = `| ${complete.map((c, i) => (i === 6 ? "" : c)).join(" | ")} |`
      expect(compareVerbs(verbTable(withoutStandby.join("\n")).rows, verbRows()).cells).toEqual([
        { verb: "complete", missingFromDoc: ["standby"], extraInDoc: [] }
      ])
      const withPending = [...lines]
      withPending[at] = `| ${complete.map((c, i) => (i === 8 ? "✔" : c)).join(" | ")} |`
      expect(compareVerbs(verbTable(withPending.join("\n")).rows, verbRows()).cells).toEqual([
        { verb: "complete", missingFromDoc: [], extraInDoc: ["pending"] }
      ])
      const withoutRow = lines.filter((_, i) => i !== at).join("\n")
      expect(compareVerbs(verbTable(withoutRow).rows, verbRows()).verbs.missingFromDoc).toEqual(["complete"])
    })
  })
})
