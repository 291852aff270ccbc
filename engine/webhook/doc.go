// Package webhook is the webhook output: it sends records to an HTTP endpoint, as a
// stream's output or in a sink (sinks: [{from: ops.alert.v1, webhook: {...}}]).
//
// # Bodies
//
// Format json sends each record as its JSON object (an array of them when a request may
// carry several). Format alertmanager sends alert records (the threshold processor's) as
// Alertmanager sends notifications to its webhook receivers: version "4", groupKey,
// status, receiver, groupLabels, commonLabels, commonAnnotations, externalURL and alerts,
// each with status, labels (the series' values, the rule's labels, severity, and alertname
// = the rule), annotations (the rule's, with the message as summary), startsAt (when it
// fired), endsAt (the zero time while firing, as Alertmanager sends it; when it ended once
// resolved), generatorURL and fingerprint. Pending alerts and the end of an alert that never
// fired are not sent, as Prometheus never hands those to Alertmanager. Format template sends
// the text of a template.
//
// Templates (template, generator_url) are the engine's {{expr}} templates (eval.Template),
// the ones of threshold messages and annotations, rather than Go's text/template: their
// placeholders are expressions of the language used everywhere else in the file, type-checked
// against the records that reach the output, so lint points at an unknown field inside a
// template at its line and column, and there is no second syntax (pipelines, dot-prefixed
// fields) to learn. A JSON body quotes its strings with toJSON: '{"text": {{toJSON(message)}}}'.
//
// # Delivery
//
// Write plans the batch's requests (groups, max_records, max_body_bytes), then sends them
// with at most concurrency in flight. Records with one key (an alert's fingerprint, else the
// Kafka key) are delivered in order: a request carrying a key waits until the request
// carrying that key's previous records is settled. Each request is retried on no response,
// a timeout, 408, 425, 429 and 5xx, after a full-jitter exponential backoff or the
// Retry-After a 429 or 503 asks for, until max_attempts or max_elapsed; any other status
// gives it up at once. A given-up record goes to rejects (the dead-letter topic) with the
// redacted URL, the reason, the last status and the start of the last body. Write returns
// when every record is delivered or given up, so the stream commits the batch's offsets
// only then; a cancelled Write returns the context's error and the batch is written again.
//
// Redirects are not followed: they would carry the headers (credentials) to an address
// nobody configured.
//
// # Repeats
//
// Every request carries an idempotency key header that is the same each time the same
// records are sent: for an alert its fingerprint, state and transition time; else its
// event_id; else its source position; for a request of several records a hash of theirs.
//
// A Write cancelled or killed (kill -9) halfway has delivered some of its requests; its
// batch's offsets are not committed, so the next run writes the batch again. The delivery
// log (deliveryLog: delivery_log.dir, one file per output) remembers the keys of the records
// the receiver acknowledged, and those are not sent again. What is left is the requests
// whose 2xx was on its way when the process died (at most concurrency of them), sent again
// with the same keys for the receiver to drop; and, without a log (dir ""), every record the
// killed run had delivered of the batch.
package webhook
