import type { ViteUserConfig } from "vitest/config"

// Inside the workspace the packages resolve to their TypeScript sources through the custom export condition
// "@effect-eventsourcing/source" (see the packages' `exports`), so tests need no build; published consumers never
// set it and get dist/.
// (Vite replaces its default conditions when this is set, so they are repeated: module, node, development|production)
const conditions = ["@effect-eventsourcing/source", "module", "node", "development|production"]

const config: ViteUserConfig = {
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
}

export default config
