// Package postgres writes stream records into PostgreSQL tables and answers the API's table
// queries from them.
//
// An Output writes each batch effectively once: records are converted to their columns'
// types in Go (a record that does not fit goes to the dead-letter topic with the column and
// the reason), copied with binary COPY into a temporary staging table, and moved into the
// target with INSERT ... SELECT ... ON CONFLICT (dedupe key) DO NOTHING, all in one
// transaction. A redelivered batch, a retried write after an ambiguous commit, and a
// duplicate inside one batch all leave one row per event. If the server refuses a row
// (a CHECK constraint, a varchar too short), the batch is split until the refused rows are
// alone; those are rejected and the rest committed.
//
// The built-in tables metrics and alerts (the seed's schema plus event_id and the alert
// lifecycle columns) are created with their indexes when missing; other tables must exist.
//
// Connections come from one pool per DSN for the whole process (Pool), shared by every
// output and Store; CloseAll closes them at shutdown.
package postgres
