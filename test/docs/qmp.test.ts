/**
 * docs/qmp.md is the reference of the QMP server: every command has a heading,
 * no heading names a command that does not exist, and every event and error
 * class the server sends is described.
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import * as Qmp from "../../src/Qmp.ts"

const doc = readFileSync(new URL("../../docs/qmp.md", import.meta.url), "utf8")
const commandsSection = doc.slice(doc.indexOf("\n## Commands\n"), doc.indexOf("\n## Events\n"))
const headings = [...commandsSection.matchAll(/^### (.+)$/gm)].flatMap((m) => [...m[1]!.matchAll(/`([^`]+)`/g)].map((n) => n[1]!))

describe("docs/qmp.md", () => {
  it("documents every command, and only those", () => {
    expect([...headings].sort()).toEqual([...Qmp.commandNames].sort())
  })

  it("documents every event and error class", () => {
    for (const name of ["JOB_STATUS_CHANGE", "BLOCK_JOB_READY", "BLOCK_JOB_PENDING", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED", "SHUTDOWN"]) {
      expect(doc).toContain(`| \`${name}\``)
    }
    for (const cls of ["GenericError", "CommandNotFound", "DeviceNotActive"]) expect(doc).toContain(`| \`${cls}\``)
  })

  it("quotes the size limit the server enforces", () => {
    expect(doc).toContain(`maximum message size of ${Qmp.maxLineBytes} bytes`)
  })
})
