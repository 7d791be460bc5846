import { appendManyFunction } from "./0001_create_event_store.js"
import { appendFunction } from "./0003_append_fast_path.js"
import { appendOneFunction } from "./0004_append_one.js"

/**
 * The store's writers' key: a transaction-scoped advisory lock that every appending transaction takes in SHARED mode
 * before it takes any position, and so holds until it ends (commit, rollback, or the end of a prepared transaction).
 * Advisory locks are per database, and the key names the schema: it marks "a writer of this store". Readers look for
 * its holders in `pg_locks` to narrow their gap-safety horizon (see `horizon` in `../reading.ts`). Nothing takes it
 * in exclusive mode: writers never wait for it.
 *
 * @internal
 */
export const writersKey = (schema: string): string => `hashtextextended('effect-eventsourcing:${schema}:writers', 0)`

/**
 * Migration 5: the append functions take the writers' key (`writersKey`) before their positions. The three functions
 * (`append_many` of migration 1, `append` of migration 3, `append_one` of migration 4) are replaced under the same
 * names and signatures with the same bodies plus that one statement, so that clients of earlier versions, which
 * call them by name, take the key as well.
 * The bodies come from the same builders as migrations 1, 3 and 4 (`appendManyFunction`, `appendFunction`,
 * `appendOneFunction`), with the key's statement spliced in before the positions are taken.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  const take = `perform pg_advisory_xact_lock_shared(${writersKey(schema)});\n`
  const intro = (indent: string, versions: string) =>
    `${indent}-- the store's writers' key (readers look for its holders), then the critical section of ${versions}, unchanged\n` +
    `${indent}${take}`
  return `
${
    appendManyFunction(s, schema, {
      head: `create or replace function ${s}.append_many`,
      writers: intro("    ", "version 1")
    })
  }
${appendFunction(s, lockKey, { head: `create or replace function ${s}.append`, intro: intro("  ", "version 1") })}
${
    appendOneFunction(s, lockKey, {
      head: `create or replace function ${s}.append_one`,
      intro: intro("  ", "versions 1 and 3")
    })
  }`
}
