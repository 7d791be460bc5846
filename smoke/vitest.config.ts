import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "smoke",
    include: ["test/**/*.test.ts"],
    // a PostgreSQL server for the apps: DATABASE_URL, or an embedded one
    globalSetup: ["../packages/postgres/test/globalSetup.ts"],
    // four packages built, packed and installed (two apps): minutes on a loaded 2-core machine
    testTimeout: 600_000,
    hookTimeout: 120_000,
    // after every other project (it builds, packs and installs; the other projects' timing tests keep the CPUs)
    sequence: { groupOrder: 1 }
  }
})
