// Package runtime turns a loaded pipeline file into running streams.
//
// It works in two phases so that a bad file never touches a broker or a database:
// Build compiles everything that can be checked offline (expressions, JSON Schemas, lookup
// tables, processor configs) and returns every problem at once as config.Errors; Run then
// connects (broker, topics, PostgreSQL), starts every stream (a processing and a delivery
// stage each, see stream.go) and the API, and stops them cleanly when its context ends.
//
// A stream's loop is the engine's delivery guarantee: read a batch, decode and validate it,
// run the processors, write the output durably, write the rejects to the dead-letter topic
// durably, and only then ack the batch (commit its offsets). A crash anywhere before the ack
// means the batch is read again; outputs tolerate that (deterministic event ids, dedupe on
// write), which is what makes delivery at-least-once with effectively-once PostgreSQL rows.
package runtime
