/**
 * An embedded PostgreSQL 15 server on a free loopback port: the public test support of the package
 * (`@effect-eventsourcing/postgres/testing`), re-exported for the tests that start their own server (fault tests
 * stop and restart it without touching any other server).
 */
export { type EmbeddedServer, freePort, startEmbedded } from "../src/testing.js"
