// Runs docgen's examples index (see bin/tsx) as one vitest test file, with the workspace's source condition
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const conditions = ["@effect-eventsourcing/source", "module", "node", "development|production"]

export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: [process.env["DOCGEN_EXAMPLES"] ?? "docs/examples/index.ts"],
    testTimeout: 60_000
  }
})
