import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      name: "nats",
      // a PostgreSQL server for the relay's PostgreSQL test: DATABASE_URL, or an embedded one
      globalSetup: ["../postgres/test/globalSetup.ts"],
      // the tests share one NATS server and measure redelivery delays: one file at a time
      fileParallelism: false
    }
  })
)
