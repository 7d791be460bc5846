import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      name: "bank-account-http",
      // a PostgreSQL server for the tests on the Postgres store: DATABASE_URL, or an embedded one, through the
      // postgres package's public test support (users write "@effect-eventsourcing/postgres/testing/globalSetup")
      globalSetup: ["../../packages/postgres/src/testing/globalSetup.ts"],
      // global reads wait for the server's oldest open transaction: one file at a time on the shared server
      fileParallelism: false
    }
  })
)
