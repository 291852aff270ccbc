// Package engine holds the shapes every part of eventops-engine agrees on: the Record that
// moves through a stream, and the three small interfaces a stream is made of — an Input reads
// a batch and acks it, a Processor maps a batch to a batch, an Output writes a batch durably.
// It has no behaviour of its own; engine/runtime assembles and runs pipelines from these parts.
package engine
