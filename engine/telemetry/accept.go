package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventops/eventops-engine/engine/netguard"
)

// acceptErrorsDesc is eventops_accept_errors_total: failed accepts of a listener (the API,
// the embedded broker), each retried after a backoff. The counts live in netguard for the
// whole process, because the embedded broker has no Metrics of its own to count into.
var acceptErrorsDesc = prometheus.NewDesc("eventops_accept_errors_total",
	"Failed accepts of a listener (e.g. out of file descriptors), each retried after a backoff.",
	[]string{"listener"}, nil)

// acceptErrors exports netguard's counts.
type acceptErrors struct{}

func (acceptErrors) Describe(ch chan<- *prometheus.Desc) { ch <- acceptErrorsDesc }

func (acceptErrors) Collect(ch chan<- prometheus.Metric) {
	for name, n := range netguard.AcceptErrors() {
		ch <- prometheus.MustNewConstMetric(acceptErrorsDesc, prometheus.CounterValue, float64(n), name)
	}
}
