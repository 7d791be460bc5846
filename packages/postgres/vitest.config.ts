import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      name: "postgres",
      globalSetup: ["./test/globalSetup.ts"],
      // Global reads are gap-safe through the server-wide oldest running transaction: a test file holding a
      // writing transaction open on purpose would delay the global reads of the others (same server)
      fileParallelism: false
    }
  })
)
