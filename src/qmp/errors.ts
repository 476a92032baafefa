/**
 * The errors a QMP client sees. QEMU answers a failed command with
 * `{"error": {"class", "desc"}}`; effect-jobs uses three of QEMU's classes, with
 * QEMU's texts:
 *
 * - `GenericError`: nearly everything (framing, arguments, the job verbs);
 * - `CommandNotFound`: unknown commands, and commands sent before or after
 *   capabilities negotiation where they do not belong;
 * - `DeviceNotActive`: a `block-job-*` command naming no block job.
 *
 * The engine's typed errors already carry QEMU's texts as their `message`, so
 * mapping them is a matter of choosing the class.
 */
import { Schema } from "effect"

/**
 * The catch-all class: the description says what went wrong.
 */
export class GenericError extends Schema.TaggedError<GenericError>()("GenericError", { desc: Schema.String }) {
  override get message() {
    return this.desc
  }
}

/**
 * No such command, or not in this phase of the session.
 */
export class CommandNotFound extends Schema.TaggedError<CommandNotFound>()("CommandNotFound", {
  desc: Schema.String
}) {
  override get message() {
    return this.desc
  }
}

/**
 * A `block-job-*` command named no block job.
 */
export class DeviceNotActive extends Schema.TaggedError<DeviceNotActive>()("DeviceNotActive", {
  desc: Schema.String
}) {
  override get message() {
    return this.desc
  }
}

/** An error reply: its `_tag` is the QMP error class. */
export type QmpError = GenericError | CommandNotFound | DeviceNotActive

/** A `desc` is one line: line breaks (a driver's message, a path) become spaces. */
export const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, " ")

/** The engine's errors all become GenericError with the engine's text (QEMU's), on one line. */
export const fromJobError = (error: { readonly message: string }): GenericError =>
  new GenericError({ desc: oneLine(error.message) })

/** What `block-job-*` commands answer when `device` (or `id`) names no block job. */
export const blockJobNotFound = (id: string): DeviceNotActive =>
  new DeviceNotActive({ desc: `Block job '${id}' not found` })

/** Any command but `qmp_capabilities` before negotiation. */
export const expectingNegotiation = (): CommandNotFound =>
  new CommandNotFound({ desc: "Expecting capabilities negotiation with 'qmp_capabilities'" })

/** `qmp_capabilities` after negotiation. */
export const alreadyNegotiated = (): CommandNotFound =>
  new CommandNotFound({ desc: "Capabilities negotiation is already complete, command ignored" })

/** A command name nobody registered. */
export const commandNotFound = (name: string): CommandNotFound =>
  new CommandNotFound({ desc: `The command ${name} has not been found` })

/** The value of an error reply's `error` member. */
export const errorBody = (error: QmpError): { readonly class: string; readonly desc: string } => ({
  class: error._tag,
  desc: oneLine(error.desc)
})
