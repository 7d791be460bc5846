import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      name: "cli",
      // a PostgreSQL server (DATABASE_URL, or an embedded one), then the package built: the tests run its bin
      globalSetup: ["../postgres/test/globalSetup.ts", "./test/build.ts"],
      // child processes (node starting, tsc building): generous on a loaded 2-core machine
      testTimeout: 60_000,
      hookTimeout: 300_000
    }
  })
)
