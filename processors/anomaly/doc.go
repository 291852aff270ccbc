// Package anomaly is the anomaly processor: per series, a streaming detector scores each
// value in [0, 1] and, above alert_above, raises alerts through the threshold processor's
// alert lifecycle.
package anomaly

// DefaultAlertAbove is the score above which the processor raises an alert by default.
const DefaultAlertAbove = 0.4
