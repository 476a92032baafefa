/**
 * docs/architecture.md names source files and the functions a verb passes
 * through; this keeps those names pointing at code that exists, so a rename in
 * src/ shows up here instead of leaving the doc pointing at nothing.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"

const srcDir = new URL("../../src/", import.meta.url)
const doc = readFileSync(new URL("../../docs/architecture.md", import.meta.url), "utf8")

/** Every `name.ts`, `internal/name.ts`, `drivers/name.ts`, … in backticks. */
const fileMentions = [...new Set([...doc.matchAll(/`((?:[a-z]+\/)?[A-Za-z]+\.ts)`/g)].map((m) => m[1]!))]

/** Every lower-case identifier in backticks in "The path of one verb". */
const pathSection = doc.slice(doc.indexOf("## The path of one verb"), doc.indexOf("## Differences from QEMU"))
const identifierMentions = [...new Set([...pathSection.matchAll(/`([a-z][A-Za-z]+)`/g)].map((m) => m[1]!))]

const exists = (name: string) =>
  existsSync(new URL(name, srcDir)) || (!name.includes("/") && existsSync(new URL(`internal/${name}`, srcDir)))

describe("docs/architecture.md", () => {
  it("names only source files that exist", () => {
    expect(fileMentions).toContain("internal/engine.ts")
    expect(fileMentions.filter((name) => !exists(name))).toEqual([])
  })

  it("names only functions that exist in src/internal", () => {
    const internal = new URL("internal/", srcDir)
    const words = new Set(
      readdirSync(internal).flatMap((file) => readFileSync(new URL(file, internal), "utf8").match(/[A-Za-z]+/g) ?? [])
    )
    expect(identifierMentions).toContain("requestCancel")
    expect(identifierMentions.filter((name) => !words.has(name))).toEqual([])
  })
})
