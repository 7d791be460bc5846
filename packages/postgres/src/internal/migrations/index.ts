/**
 * The store's migrations, one file each, for `@effect/sql`'s Migrator (run by `migrate` in `../schema.ts`). The
 * event, snapshot and checkpoint stores share them and their `migrations` table.
 *
 * A released migration is frozen: a database migrated by an earlier version must end up where a fresh one does.
 * Change the schema with a new migration; `test/Migrations.test.ts` pins the text each one sends.
 *
 * @internal
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as createEventStore from "./0001_create_event_store.js"
import * as createCheckpoints from "./0002_create_checkpoints.js"
import * as appendFastPath from "./0003_append_fast_path.js"
import * as appendOne from "./0004_append_one.js"
import * as writersKey from "./0005_writers_key.js"
import * as appendBatch from "./0006_append_batch.js"
import * as subscriptionOperations from "./0007_subscription_operations.js"
import * as tombstones from "./0008_tombstones.js"
import * as createTimers from "./0009_create_timers.js"

const run = (text: string) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text))

/** @internal */
export const migrations = (schema: string): Migrator.Loader =>
  Migrator.fromRecord({
    "1_create_event_store": run(createEventStore.migration(schema)),
    "2_create_checkpoints": run(createCheckpoints.migration(schema)),
    "3_append_fast_path": run(appendFastPath.migration(schema)),
    "4_append_one": run(appendOne.migration(schema)),
    "5_writers_key": run(writersKey.migration(schema)),
    "6_append_batch": run(appendBatch.migration(schema)),
    "7_subscription_operations": run(subscriptionOperations.migration(schema)),
    "8_tombstones": run(tombstones.migration(schema)),
    "9_create_timers": run(createTimers.migration(schema))
  })
