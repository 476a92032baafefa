/**
 * A reader of the Prometheus text format (version 0.0.4), strict enough to
 * catch malformed output: every sample line must parse, every sample must
 * belong to a family declared by a `# TYPE` line before it, and a family is
 * declared once.
 */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  /** Family name → its type (counter, gauge, histogram, summary, untyped). */
  readonly types: ReadonlyMap<string, string>
  readonly samples: ReadonlyArray<Sample>
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const labelPair = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/

const parseLabels = (text: string, line: string): Record<string, string> => {
  const labels: Record<string, string> = {}
  let rest = text
  while (rest.length > 0) {
    const match = rest.match(labelPair)
    if (match === null) throw new Error(`bad labels in: ${line}`)
    labels[match[1]!] = match[2]!.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
    rest = rest.slice(match[0].length)
  }
  return labels
}

const parseValue = (text: string, line: string): number => {
  if (text === "+Inf") return Infinity
  if (text === "-Inf") return -Infinity
  if (text === "NaN") return NaN
  const value = Number(text)
  if (text.length === 0 || Number.isNaN(value)) throw new Error(`bad value in: ${line}`)
  return value
}

/** The family a sample belongs to: histogram samples carry `_bucket`, `_sum`, `_count`. */
const familyOf = (name: string, types: ReadonlyMap<string, string>): string | undefined => {
  if (types.has(name)) return name
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length)
      const type = types.get(base)
      if (type === "histogram" || type === "summary") return base
    }
  }
  return undefined
}

export const parse = (text: string): Exposition => {
  const types = new Map<string, string>()
  const samples: Array<Sample> = []
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("the exposition must end with a newline")
  for (const line of text.split("\n")) {
    if (line.length === 0) continue
    if (line.startsWith("# TYPE ")) {
      const [name, type, ...extra] = line.slice("# TYPE ".length).split(" ")
      if (name === undefined || type === undefined || extra.length > 0) throw new Error(`bad TYPE line: ${line}`)
      if (types.has(name)) throw new Error(`family ${name} declared twice`)
      types.set(name, type)
      continue
    }
    if (line.startsWith("#")) continue // HELP and comments
    const match = line.match(sampleLine)
    if (match === null) throw new Error(`bad sample line: ${line}`)
    const name = match[1]!
    if (familyOf(name, types) === undefined) throw new Error(`sample before its TYPE line: ${line}`)
    samples.push({ name, labels: parseLabels(match[2] ?? "", line), value: parseValue(match[3]!, line) })
  }
  return { types, samples }
}

/** The value of the one sample named `name` whose labels include `labels`; throws if there is not exactly one. */
export const valueOf = (exposition: Exposition, name: string, labels: Record<string, string> = {}): number => {
  const found = exposition.samples.filter((sample) =>
    sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  )
  if (found.length !== 1) {
    throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`)
  }
  return found[0]!.value
}
