import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Many files spend their time waiting on child processes, sockets and disks rather than on a core:
    // two workers even on two cores (vitest's default leaves one core to itself).
    maxWorkers: Math.max(2, availableParallelism() - 1)
  }
})
