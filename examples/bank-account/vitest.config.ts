import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      name: "bank-account",
      // a PostgreSQL server for the tests on the Postgres store: DATABASE_URL, or an embedded one
      globalSetup: ["../../packages/postgres/test/globalSetup.ts"]
    }
  })
)
