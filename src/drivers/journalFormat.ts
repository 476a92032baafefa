/**
 * The commit journal's format, and the checks its content must pass before
 * recovery acts on it.
 *
 * A transaction's journal is one file in every directory that holds one of
 * its targets, all with the same name (`.effect-jobs-<pid>-<token>.commit-journal`):
 *
 * - the **record**, in one directory: once it exists, the transaction is
 *   committed (every rename must happen);
 * - an **intent** in each other directory, written before the record.
 *
 * Each file lists only the renames of its own directory: a temporary copy and
 * its target, both direct children of that directory. Beyond that, the record
 * names the intents and each intent names the record — files with the same
 * name in the other directories, which recovery only looks at (does it
 * exist?), never opens, renames or removes.
 * @internal
 */
import { type Path, Schema } from "effect"
import { isTempNameOf, parseJournalName, parseTempName } from "./ownership.ts"

/** One rename of a commit: a temporary copy onto its target (absolute paths, same directory). */
export interface Rename {
  readonly temp: string
  readonly target: string
  /**
   * Replace whatever stands at the target (`overwrite: true`): an atomic
   * rename. Otherwise the commit is a link of the copy to the target name,
   * which fails if anything (even a dangling symbolic link) is there, then the
   * removal of the copy's own name.
   */
  readonly replace: boolean
}

const JournalRename = Schema.Struct({ temp: Schema.String, target: Schema.String, replace: Schema.Boolean })

const common = {
  format: Schema.Literal("effect-jobs commit journal"),
  version: Schema.Literal(2),
  /** The process that wrote it, and its token: the same as in the file's name. */
  pid: Schema.Int,
  token: Schema.String,
  /** The renames of this directory. */
  renames: Schema.Array(JournalRename)
}

/** The content of one journal file (JSON). */
export const Journal = Schema.Union([
  Schema.Struct({ ...common, role: Schema.Literal("record"), intents: Schema.Array(Schema.String) }),
  Schema.Struct({ ...common, role: Schema.Literal("intent"), record: Schema.String })
])
export type Journal = typeof Journal.Type

/**
 * The format of earlier versions: one file per directory, each listing every
 * rename of the transaction and every file of the journal. Still finished
 * when it covers one directory (it then means what a record does, with
 * renames that replace); one that spans directories is refused.
 */
const JournalV1 = Schema.Struct({
  format: Schema.Literal("effect-jobs commit journal"),
  version: Schema.Literal(1),
  pid: Schema.Int,
  token: Schema.String,
  renames: Schema.Array(Schema.Struct({ temp: Schema.String, target: Schema.String })),
  copies: Schema.Array(Schema.String)
})
type JournalV1 = typeof JournalV1.Type

export const encodeJournal = Schema.encodeSync(Schema.fromJsonString(Journal))
export const decodeJournal = Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.Union([Journal, JournalV1])))

/** Where a journal file was found: its directory (absolute), its name, and the owner its name claims. */
export interface JournalPlace {
  readonly directory: string
  readonly name: string
  readonly pid: number
  readonly token: string
}

/** A rename recovery may carry out: names of entries of the journal's own directory. */
export interface LocalRename {
  readonly tempName: string
  readonly targetName: string
  readonly replace: boolean
}

/** A journal whose content passed `checkJournal`. */
export interface CheckedJournal {
  readonly renames: ReadonlyArray<LocalRename>
  /** How the content spells its directory: each must turn out to be the journal's own. */
  readonly spelledDirectories: ReadonlyArray<string>
  /** The record (for an intent) or the intents (for the record): only ever looked at. */
  readonly others: ReadonlyArray<string>
  readonly role: Journal["role"]
}

/**
 * The content checks, with the reason a journal fails them: its pid and token
 * are those of its name; each rename's temporary copy and target are direct
 * children of one directory, spelled as a normalised absolute path; the target
 * is an ordinary name (not `.`, `..`, nor a temporary copy's or journal's
 * name); the copy's name is the one the writer gives a copy of that target
 * (`.<target name>.effect-jobs-<pid>-<token>.tmp`, the journal's pid); no
 * copy or target appears twice; the other journal files it names have this
 * file's own name.
 */
export const checkJournal = (
  path: Path.Path,
  place: JournalPlace,
  found: Journal | JournalV1
): CheckedJournal | { readonly reason: string } => {
  const canonical = (p: string) => path.isAbsolute(p) && path.normalize(p) === p
  const ownPath = path.join(place.directory, place.name)
  if (found.version === 1 && (found.copies.length !== 1 || found.copies[0] !== ownPath)) {
    return { reason: "it is a journal of an earlier version that spans several directories" }
  }
  const journal: Journal = found.version === 1
    ? {
      format: found.format,
      version: 2,
      pid: found.pid,
      token: found.token,
      renames: found.renames.map((r) => ({ temp: r.temp, target: r.target, replace: true })),
      role: "record",
      intents: []
    }
    : found
  if (journal.pid !== place.pid || journal.token !== place.token) {
    return { reason: `its content (pid ${journal.pid}, token ${journal.token}) does not match its name` }
  }
  if (journal.renames.length === 0) return { reason: "it lists no rename" }
  const renames: Array<LocalRename> = []
  const spelled = new Set<string>()
  const temps = new Set<string>()
  const targets = new Set<string>()
  for (const rename of journal.renames) {
    if (!canonical(rename.temp) || !canonical(rename.target)) {
      return { reason: `it names a path that is not a normalised absolute path ('${rename.temp}' → '${rename.target}')` }
    }
    const directory = path.dirname(rename.target)
    if (path.dirname(rename.temp) !== directory) {
      return { reason: `it names a temporary copy outside its target's directory ('${rename.temp}')` }
    }
    const targetName = path.basename(rename.target)
    const tempName = path.basename(rename.temp)
    if (
      targetName === "" || targetName === "." || targetName === ".." || parseTempName(targetName) !== undefined ||
      parseJournalName(targetName) !== undefined
    ) {
      return { reason: `it names a target that no job writes ('${rename.target}')` }
    }
    if (!isTempNameOf(tempName, targetName, journal.pid)) {
      return { reason: `'${rename.temp}' is not the name of a temporary copy of '${targetName}' by process ${journal.pid}` }
    }
    if (temps.has(tempName) || targets.has(targetName)) {
      return { reason: `it names '${rename.temp}' or '${rename.target}' twice` }
    }
    temps.add(tempName)
    targets.add(targetName)
    spelled.add(directory)
    renames.push({ tempName, targetName, replace: rename.replace })
  }
  const others = journal.role === "record" ? journal.intents : [journal.record]
  for (const other of others) {
    if (!canonical(other) || path.basename(other) !== place.name || other === ownPath) {
      return { reason: `it names '${other}' as another file of its transaction` }
    }
  }
  if (new Set(others).size !== others.length) return { reason: "it names another file of its transaction twice" }
  return { renames, spelledDirectories: Array.from(spelled), others, role: journal.role }
}
