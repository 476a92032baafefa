/**
 * The session commands: `qmp_capabilities` (negotiation; effect-jobs offers no
 * optional capability) and `quit`.
 */
import { Effect, Schema } from "effect"
import { Enum, NoArguments } from "../args.ts"
import { type Command, command } from "../command.ts"
import { alreadyNegotiated, GenericError } from "../errors.ts"

const Capabilities = Schema.Struct({ enable: Schema.optionalKey(Schema.Array(Enum(["oob"]))) })

export const sessionCommands: ReadonlyArray<Command> = [
  command("qmp_capabilities", Capabilities, ({ enable }, context) => {
    if (context.negotiated) return Effect.fail(alreadyNegotiated())
    const wanted = enable ?? []
    if (wanted.length > 0) return Effect.fail(new GenericError({ desc: `Capability '${wanted[0]}' not available` }))
    return Effect.as(context.negotiate, {})
  }),
  // QEMU's order: SHUTDOWN, every job cancelled (its events), then the reply; then the connections close.
  command("quit", NoArguments, (_, context) => Effect.as(context.requestShutdown("quit"), {}))
]
