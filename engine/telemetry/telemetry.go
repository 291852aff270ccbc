// Package telemetry holds the engine's Prometheus metrics, served as text at /-/metrics.
// One Metrics value is made per process and handed to every component that counts.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the engine's counters, gauges and histograms.
type Metrics struct {
	Registry *prometheus.Registry

	// RecordsIn counts records read by a stream's input. Labels: stream.
	RecordsIn *prometheus.CounterVec
	// RecordsOut counts records written by a stream's output. Labels: stream.
	RecordsOut *prometheus.CounterVec
	// RecordsShared counts records a stream took decoded from their writer in the same
	// process (decode once). Labels: stream.
	RecordsShared *prometheus.CounterVec
	// ProcessorIn/Out count records entering and leaving a processor. Labels: stream, processor.
	ProcessorIn  *prometheus.CounterVec
	ProcessorOut *prometheus.CounterVec
	// Errors counts records sent to the dead-letter topic. Labels: stream, stage.
	Errors *prometheus.CounterVec
	// DeadLetters counts records written to a dead-letter topic. Labels: stream, topic.
	DeadLetters *prometheus.CounterVec
	// OutputRetries counts failed output writes that were retried. Labels: stream.
	OutputRetries *prometheus.CounterVec
	// ConsumerLag is the number of records behind the end of each partition. Labels: stream, topic, partition.
	ConsumerLag *prometheus.GaugeVec
	// SinkBatchSeconds is how long one durable batch write takes. Labels: stream, sink.
	SinkBatchSeconds *prometheus.HistogramVec
	// SinkBatchRows is the number of rows per sink batch. Labels: stream, sink.
	SinkBatchRows *prometheus.HistogramVec
	// SinkDuplicates counts rows a sink skipped because their dedupe key was already in the
	// table (redeliveries, upstream replays). Labels: stream, sink.
	SinkDuplicates *prometheus.CounterVec
	// StageSeconds is the time a stream spends per batch in each stage: read (waiting for
	// input), process, write (output durable), dead_letter, ack. Labels: stream, stage.
	StageSeconds *prometheus.HistogramVec
	// AlertsEmitted counts alert transitions emitted by threshold rules. Labels: stream, rule, state.
	AlertsEmitted *prometheus.CounterVec
	// LateRecords counts records that arrived after their window or alert evaluation had
	// moved past them (sent to a late: topic or the dead-letter topic). Labels: stream, processor.
	LateRecords *prometheus.CounterVec
	// Checkpoints counts state checkpoints committed with a batch's offsets, and
	// CheckpointEntries the state entries they wrote. Labels: stream.
	Checkpoints       *prometheus.CounterVec
	CheckpointEntries *prometheus.CounterVec
	// CheckpointAborts counts checkpoint transactions that did not commit (a rebalance, a
	// failed write); the batch is read again. Labels: stream.
	CheckpointAborts *prometheus.CounterVec
	// StateRestores counts partitions whose state was restored from the changelog. Labels: stream.
	StateRestores *prometheus.CounterVec
	// StreamCondition is 1 while a condition keeps a stream from being ready. Labels: stream, condition.
	StreamCondition *prometheus.GaugeVec
	// CompactionsDeferred counts skipped compaction passes of the embedded broker.
	CompactionsDeferred prometheus.Counter
	// BrokerUp is whether the broker answered the last metadata request.
	BrokerUp prometheus.Gauge
	// SSEClients is the number of connected Server-Sent Events clients. Labels: path.
	SSEClients *prometheus.GaugeVec
	// SSEDropped counts SSE clients disconnected because they fell too far behind. Labels: path.
	SSEDropped *prometheus.CounterVec
	// APIAuthFailures counts API requests refused for their credentials. Labels: reason
	// (missing, invalid, scope, tenant, cross_site).
	APIAuthFailures *prometheus.CounterVec
	// HTTPInputRequests counts the requests of receivers (http, prometheus_remote_write
	// inputs) by answer. Labels: stream, input, code.
	HTTPInputRequests *prometheus.CounterVec
	// HTTPInputRecords counts the records receivers stored in their topic. Labels: stream, input.
	HTTPInputRecords *prometheus.CounterVec
	// HTTPInputRejected counts the items receivers left out of a request they stored the rest
	// of (OTLP partial success: a record over max_record_bytes). Labels: stream, input.
	HTTPInputRejected *prometheus.CounterVec
	// WebhookRequests counts the requests of webhook outputs by outcome: the status class
	// (2xx, 3xx, 4xx, 5xx) or error (no response: refused, reset, timed out). Labels:
	// stream, class.
	WebhookRequests *prometheus.CounterVec
	// WebhookRetries counts webhook requests repeated after a failure. Labels: stream.
	WebhookRetries *prometheus.CounterVec
	// WebhookDeadLettered counts records a webhook output gave up on (they go to the
	// dead-letter topic), by reason: rejected (a status retrying cannot fix), exhausted
	// (max_attempts or max_elapsed), too_large (over max_body_bytes), invalid (not
	// encodable in the format). Labels: stream, reason.
	WebhookDeadLettered *prometheus.CounterVec
	// WebhookSkipped counts alert records a webhook in format alertmanager does not send,
	// as Alertmanager's receivers never get them: pending alerts, and the end of an alert
	// that never fired. Labels: stream.
	WebhookSkipped *prometheus.CounterVec
	// WebhookRedeliverySkipped counts records a webhook did not send because its delivery
	// log says the receiver acknowledged them before (a batch read again after a restart).
	WebhookRedeliverySkipped *prometheus.CounterVec
	// WebhookRequestSeconds is how long one webhook request takes, to the end of its
	// response (or its failure). Labels: stream.
	WebhookRequestSeconds *prometheus.HistogramVec
	// Reloads counts reload attempts by result (applied, unchanged, rejected);
	// ConfigReloadSuccess is 1 when the last attempt did not fail, and ConfigReloadTime the
	// Unix time of the last applied configuration (the start counts), as Prometheus exports
	// them for its own reloads. SwapPause is how long a stream read nothing while it
	// switched to its new version. Labels: result; -; -; stream.
	Reloads             *prometheus.CounterVec
	ConfigReloadSuccess prometheus.Gauge
	ConfigReloadTime    prometheus.Gauge
	SwapPause           *prometheus.HistogramVec
}

// New registers every metric on a fresh registry (with Go and process collectors).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{Registry: reg}
	m.RecordsIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_stream_records_in_total", Help: "Records read by a stream's input."}, []string{"stream"})
	m.RecordsShared = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_stream_records_shared_total", Help: "Records a stream took already decoded from the stream of the same process that wrote them to its input topic (decode once), instead of decoding their JSON."}, []string{"stream"})
	m.RecordsOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_stream_records_out_total", Help: "Records written by a stream's output."}, []string{"stream"})
	m.ProcessorIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_processor_records_in_total", Help: "Records entering a processor."}, []string{"stream", "processor"})
	m.ProcessorOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_processor_records_out_total", Help: "Records leaving a processor."}, []string{"stream", "processor"})
	m.Errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_stream_errors_total", Help: "Records that failed and went to the dead-letter topic, by stage."}, []string{"stream", "stage"})
	m.DeadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_dead_letters_total", Help: "Records written to a dead-letter topic."}, []string{"stream", "topic"})
	m.OutputRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_output_retries_total", Help: "Output writes that failed and were retried."}, []string{"stream"})
	m.ConsumerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventops_consumer_lag_records", Help: "Records between a stream's position and the end of the partition."}, []string{"stream", "topic", "partition"})
	m.SinkBatchSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eventops_sink_batch_seconds", Help: "Time to write one batch durably.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"stream", "sink"})
	m.SinkBatchRows = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eventops_sink_batch_rows", Help: "Rows per sink batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}, []string{"stream", "sink"})
	m.SinkDuplicates = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_sink_duplicates_skipped_total", Help: "Rows skipped because their dedupe key was already stored (redeliveries)."}, []string{"stream", "sink"})
	m.StageSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eventops_stream_stage_seconds", Help: "Time per batch in each stage of a stream: read, process, write, dead_letter, ack.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"stream", "stage"})
	m.AlertsEmitted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_alerts_emitted_total", Help: "Alert transitions emitted by rules."}, []string{"stream", "rule", "state"})
	m.LateRecords = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_late_records_total", Help: "Records that arrived after their window or alert evaluation had moved past them."}, []string{"stream", "processor"})
	m.Checkpoints = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_state_checkpoints_total", Help: "State checkpoints committed together with a batch's offsets."}, []string{"stream"})
	m.CheckpointEntries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_state_checkpoint_entries_total", Help: "State entries written to changelog topics."}, []string{"stream"})
	m.CheckpointAborts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_state_checkpoint_aborts_total", Help: "Checkpoint transactions that did not commit; the batch is read again."}, []string{"stream"})
	m.StateRestores = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_state_restored_partitions_total", Help: "Partitions whose state was restored from the changelog."}, []string{"stream"})
	m.StreamCondition = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventops_stream_condition", Help: "1 while a condition keeps a stream from being ready: restore (state being restored), output, dead_letter, checkpoint (writes failing and retried), schema_registry (a batch's schemas could not be fetched; retried), stalled (input waiting, nothing committed for stall_after). /-/ready says why."}, []string{"stream", "condition"})
	m.CompactionsDeferred = prometheus.NewCounter(prometheus.CounterOpts{Name: "eventops_broker_compactions_deferred_total", Help: "Compaction passes of the embedded broker skipped because a stream or sink had not read a compacted topic to its end yet."})
	m.BrokerUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventops_broker_up", Help: "Whether the broker answered the engine's last metadata request (1) or not (0)."})
	m.SSEClients = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventops_sse_clients", Help: "Connected Server-Sent Events clients."}, []string{"path"})
	m.SSEDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_sse_dropped_clients_total", Help: "SSE clients disconnected for falling behind."}, []string{"path"})
	m.APIAuthFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_api_auth_failures_total", Help: "API requests refused: no token (missing), an unknown one (invalid), a token without the scope (scope) or tenant (tenant) the request needs, or a state-changing request from another site (cross_site)."}, []string{"reason"})
	m.HTTPInputRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_http_input_requests_total", Help: "Requests to receivers (http, prometheus_remote_write, otlp inputs), by the status code they were answered with (HTTP: 2xx stored, 429 send again later; gRPC: OK, RESOURCE_EXHAUSTED send again later)."}, []string{"stream", "input", "code"})
	m.HTTPInputRecords = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_http_input_records_total", Help: "Records receivers (http, prometheus_remote_write, otlp inputs) stored in their topic."}, []string{"stream", "input"})
	m.HTTPInputRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_http_input_rejected_total", Help: "Items (data points, log records, spans) receivers left out of a request whose rest they stored, and reported to the client as OTLP partial success: records over the broker's max_record_bytes."}, []string{"stream", "input"})
	f(m.HTTPInputRequests)
	f(m.HTTPInputRecords)
	f(m.HTTPInputRejected)
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_config_reloads_total", Help: "Configuration reload attempts, by result."}, []string{"result"})
	m.ConfigReloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventops_config_last_reload_successful", Help: "Whether the last configuration reload attempt succeeded (1) or was rejected (0)."})
	m.ConfigReloadTime = prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventops_config_last_reload_success_timestamp_seconds", Help: "When the running configuration was applied (Unix time)."})
	m.SwapPause = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eventops_stream_swap_pause_seconds", Help: "How long a stream read nothing while a reload switched it to its new version.", Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 5}}, []string{"stream"})
	m.WebhookRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_webhook_requests_total", Help: "Webhook requests by outcome: status class (2xx, 3xx, 4xx, 5xx) or error (no response)."}, []string{"stream", "class"})
	m.WebhookRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_webhook_retries_total", Help: "Webhook requests repeated after a failure."}, []string{"stream"})
	m.WebhookDeadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_webhook_dead_lettered_total", Help: "Records a webhook output gave up on and sent to the dead-letter topic, by reason: rejected, exhausted, too_large, invalid."}, []string{"stream", "reason"})
	m.WebhookSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_webhook_skipped_total", Help: "Alert records not sent in Alertmanager's payload because Alertmanager's receivers never get them (pending, or the end of an alert that never fired)."}, []string{"stream"})
	m.WebhookRequestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eventops_webhook_request_seconds", Help: "Duration of one webhook request, to the end of its response or its failure.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"stream"})
	m.WebhookRedeliverySkipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventops_webhook_redelivery_skipped_total", Help: "Records a webhook did not send because the receiver acknowledged them before (its delivery log), in a batch read again after a restart."}, []string{"stream"})
	for _, c := range []prometheus.Collector{m.WebhookRequests, m.WebhookRetries, m.WebhookDeadLettered, m.WebhookSkipped, m.WebhookRedeliverySkipped, m.WebhookRequestSeconds} {
		f(c)
	}
	for _, c := range []prometheus.Collector{m.Reloads, m.ConfigReloadSuccess, m.ConfigReloadTime, m.SwapPause} {
		f(c)
	}
	for _, c := range []prometheus.Collector{m.RecordsIn, m.RecordsOut, m.RecordsShared, m.ProcessorIn, m.ProcessorOut, m.Errors, m.DeadLetters, m.OutputRetries, m.ConsumerLag, m.StageSeconds, m.SinkBatchSeconds, m.SinkBatchRows, m.SinkDuplicates, m.AlertsEmitted, m.LateRecords, m.Checkpoints, m.CheckpointEntries, m.CheckpointAborts, m.StateRestores, m.StreamCondition, m.BrokerUp, m.CompactionsDeferred, m.SSEClients, m.SSEDropped, m.APIAuthFailures} {
		f(c)
	}
	f(acceptErrors{})
	return m
}
