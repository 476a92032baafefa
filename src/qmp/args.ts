/**
 * Command arguments, decoded with Schema and refused with QEMU's texts.
 *
 * Each command declares its arguments as a `Schema.Struct` whose members are in
 * QEMU's declaration order. Decoding collects every issue; the one reported is
 * the one QEMU's input visitor meets first — it walks the declared members in
 * order (a missing member, then a member of the wrong type, recursing into
 * structs and lists) and only after a struct's members checks for members it
 * does not know:
 *
 * - `Parameter 'x' is missing`
 * - `Invalid parameter type for 'x', expected: <string|integer|boolean|array|object>`
 * - `Parameter 'x' is unexpected`
 * - `Parameter 'm' does not accept value 'v'` (enums; `m` is the bare member name)
 *
 * Nested members are named by their path: `actions[0].data.target`, `actions[0]`.
 * Schemas here check shapes and types only; value checks (e.g. `speed ≥ 0`)
 * belong to the commands, where QEMU makes them.
 */
import { Result, Schema, SchemaAST, SchemaIssue, SchemaParser, SchemaTransformation } from "effect"
import { GenericError } from "./errors.ts"

const int64Min = -(2n ** 63n)
const int64Max = 2n ** 63n - 1n

/**
 * Saturates at the largest integers a JS number holds exactly: ±(2^53 − 1).
 * Beyond them a number would round (2^63 − 1 becomes 2^63, which is no int64),
 * and no quantity here — a speed of 2^53 − 1 bytes/s is about 8 PiB/s — is
 * meaningfully larger.
 */
const toNumber = (value: bigint): number =>
  value > BigInt(Number.MAX_SAFE_INTEGER)
    ? Number.MAX_SAFE_INTEGER
    : value < BigInt(Number.MIN_SAFE_INTEGER)
    ? Number.MIN_SAFE_INTEGER
    : Number(value)

/**
 * QEMU's `int`: a JSON integer literal in the int64 range, which `json.ts`
 * hands over as a bigint. Anything else is refused as "expected: integer":
 * `1.5`, but also `1.0` and `1e3` (numbers, to QEMU, not integers), `"1"`, and
 * 2^63 or more. Decoded to a number, saturated at ±(2^53 − 1).
 */
export const Int = Schema.BigInt.check(Schema.isBetweenBigInt({ minimum: int64Min, maximum: int64Max })).pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({ decode: toNumber, encode: (value: number) => BigInt(value) })
  )
)

/** An enum of QEMU strings. */
export const Enum = <const L extends ReadonlyArray<string>>(values: L) => Schema.Literals(values)

type Segment = string | number

/** QEMU's full_name: `actions[0].data.target`. */
export const fullName = (path: ReadonlyArray<Segment>): string => {
  let out = ""
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`
    else out += out === "" ? segment : `.${segment}`
  }
  return out
}

/** The name QEMU's enum visitor reports: the member's own name (`null` for a list element). */
const memberName = (path: ReadonlyArray<Segment>): string => {
  const last = path[path.length - 1]
  return typeof last === "string" ? last : "null"
}

/** The QAPI type name of a schema node, as QEMU writes it after "expected:". */
const typeName = (ast: SchemaAST.AST): string => {
  switch (ast._tag) {
    case "String":
    case "Literal":
    case "Union":
      return "string"
    case "Number":
    case "BigInt":
      return "integer"
    case "Boolean":
      return "boolean"
    case "Arrays":
      return "array"
    default:
      return "object"
  }
}

const child = (value: unknown, key: PropertyKey): unknown =>
  typeof value === "object" && value !== null && Object.prototype.hasOwnProperty.call(value, key)
    ? (value as Record<PropertyKey, unknown>)[key]
    : undefined

const unwrapPointer = (issue: SchemaIssue.Issue): SchemaIssue.Issue =>
  issue._tag === "Pointer" ? unwrapPointer(issue.issue) : issue

const firstKey = (issue: SchemaIssue.Issue): PropertyKey | undefined =>
  issue._tag === "Pointer" ? issue.path[0] : undefined

/** The issue of lowest rank; the first of equals. */
const earliest = (issues: readonly [SchemaIssue.Issue, ...Array<SchemaIssue.Issue>], rank: (issue: SchemaIssue.Issue) => number) => {
  let best = issues[0]
  let bestRank = rank(best)
  for (const issue of issues) {
    const r = rank(issue)
    if (r < bestRank) {
      best = issue
      bestRank = r
    }
  }
  return best
}

/** The issue QEMU's visitor reports first, as its text. */
const describe = (issue: SchemaIssue.Issue, path: ReadonlyArray<Segment>, value: unknown): string => {
  switch (issue._tag) {
    case "Pointer": {
      let next = value
      const nextPath = [...path]
      for (const key of issue.path) {
        next = child(next, key)
        nextPath.push(typeof key === "number" ? key : String(key))
      }
      return describe(issue.issue, nextPath, next)
    }
    case "Encoding":
      // A decoding transformation (`Int`): what its encoded side refused.
      return describe(issue.issue, path, value)
    case "MissingKey":
      return `Parameter '${fullName(path)}' is missing`
    case "UnexpectedKey":
      return `Parameter '${fullName(path)}' is unexpected`
    case "InvalidType":
      // A member where none may be (see NoArguments).
      if (issue.ast._tag === "Never") return `Parameter '${fullName(path)}' is unexpected`
      return `Invalid parameter type for '${fullName(path)}', expected: ${typeName(issue.ast)}`
    case "AnyOf":
      // Enums: a string QEMU does not know, or not a string at all.
      return typeof value === "string"
        ? `Parameter '${memberName(path)}' does not accept value '${value}'`
        : `Invalid parameter type for '${fullName(path)}', expected: string`
    case "Composite": {
      const ast = issue.ast
      if (ast._tag === "Objects") {
        // Declared members in declaration order first, then the unknown ones (in input order).
        const order = new Map(ast.propertySignatures.map((p, i) => [p.name, i] as const))
        return describe(
          earliest(issue.issues, (sub) => {
            const key = firstKey(sub)
            const declared = unwrapPointer(sub)._tag !== "UnexpectedKey" && key !== undefined && order.has(key)
            return declared ? order.get(key)! : Number.POSITIVE_INFINITY
          }),
          path,
          value
        )
      }
      if (ast._tag === "Arrays") {
        return describe(earliest(issue.issues, (sub) => {
          const key = firstKey(sub)
          return typeof key === "number" ? key : Number.POSITIVE_INFINITY
        }), path, value)
      }
      // A failed check on a leaf (e.g. an integer check on a number): the type is wrong.
      return `Invalid parameter type for '${fullName(path)}', expected: ${typeName(ast)}`
    }
    default:
      return `Invalid parameter type for '${fullName(path)}'`
  }
}

/** QEMU's text for the first problem of `input` against the schema whose decoding gave `issue`. */
export const issueText = (issue: SchemaIssue.Issue, input: unknown): string => describe(issue, [], input)

const options: SchemaAST.ParseOptions = { errors: "all", onExcessProperty: "error" }

/** Arguments of commands that take none: any member is unexpected. */
export const NoArguments = Schema.Record(Schema.String, Schema.Never)

/** An object without members (and with the plain prototype a parsed one has). */
const isEmptyObject = (input: unknown): input is Record<string, never> => {
  if (typeof input !== "object" || input === null || Object.getPrototypeOf(input) !== Object.prototype) return false
  for (const _ in input) return false
  return true
}

/**
 * A decoder of one command's arguments: the decoded value, or a GenericError
 * with QEMU's text.
 *
 * A command that takes no arguments is nearly always sent none, and `{}`
 * decodes to `{}`: that case skips Schema.
 */
export const decoder = <A>(schema: Schema.Decoder<A>): (input: unknown) => Result.Result<A, GenericError> => {
  const decode = SchemaParser.decodeUnknownResult(schema, options)
  const general = (input: unknown): Result.Result<A, GenericError> => {
    const result = decode(input)
    return Result.isSuccess(result)
      ? Result.succeed(result.success)
      : Result.fail(new GenericError({ desc: issueText(result.failure, input) }))
  }
  if ((schema as unknown) !== NoArguments) return general
  return (input) => (isEmptyObject(input) ? Result.succeed({} as A) : general(input))
}
