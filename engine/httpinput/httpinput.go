// Package httpinput receives records over HTTP into a stream's input topic: a JSON object, a
// JSON array of objects, or newline-delimited JSON objects, POSTed to one path. The stream
// then reads the topic as it reads any other, so everything downstream (dead letters,
// checkpoints, exactly-once into topics) is unchanged.
//
// A request is answered 200 only once every one of its records is stored in the topic
// (acknowledged by the broker, acks=all). Any other answer means nothing of the request may
// be counted on: the client still holds what it sent and sends it again. So nothing is lost;
// a request that failed after part of it was stored is stored again (at least once).
// A request that cannot be stored in time, or that finds max_in_flight requests already
// waiting, is answered 429 with Retry-After (as OTLP and remote_write clients expect), so a
// client sending faster than the broker takes slows down instead of piling up in memory.
package httpinput

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/netguard"
)

// Config is one receiver.
type Config struct {
	// Stream names the stream in logs and metrics; Topic is where records are stored.
	Stream, Topic string
	// Listen is the address Start listens on.
	Listen string
	// MaxBodyBytes bounds a request's body, after gzip is undone; MaxRecordBytes one record
	// (the broker's limit).
	MaxBodyBytes   int64
	MaxRecordBytes int
	// Timeout bounds how long a request waits for its records to be stored.
	Timeout time.Duration
	// MaxInFlight bounds the requests storing at once; one more is answered 429.
	MaxInFlight int
}

// Store is where received records go (broker.Output): Write returns once every record of
// batch is durable, or an error.
type Store interface {
	Write(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) error
}

// Metrics are the receiver's counters; nil fields are not counted.
type Metrics struct {
	// Requests counts a request by the status code it was answered with.
	Requests func(code string)
	// Records counts n records stored.
	Records func(n int)
	// Rejected counts n items a request sent that were refused one by one, the rest of the
	// request being stored (OTLP's partial success).
	Rejected func(n int64)
}

// Routes are the formats a receiver takes, by the path they are POSTed to.
type Routes map[string]Format

// Format is what a receiver takes in on one path: how a body becomes records, and how a
// request is answered.
type Format struct {
	// Decode turns a request (gzip already undone) into records within lim, or says what is
	// wrong with it; an error wrapping ErrTooLarge is answered 413, ErrMediaType 415, any
	// other 400.
	Decode func(req Request, lim Limits) (Decoded, error)
	// Stored answers a request whose records are stored.
	Stored func(req Request, d Decoded) Answer
	// Failed answers a request that could not be stored, with code; nil answers
	// {"error": "…"} in JSON.
	Failed func(req Request, code int, err error) Answer
	// Encodings are the Content-Encodings Decode undoes itself (snappy, for remote_write).
	Encodings []string
}

// Request is what a Format decodes.
type Request struct {
	Body        []byte
	ContentType string
}

// Decoded is what a request holds: the records to store, and how many of the items it
// sent were refused one by one and why (OTLP's partial success; the rest are stored).
type Decoded struct {
	Records  [][]byte
	Rejected int64
	Reason   string
}

// Answer is an HTTP answer.
type Answer struct {
	Code        int
	ContentType string
	Body        []byte
}

// JSON is the http input's format: a JSON object, an array of them, or one per line (Split).
var JSON = Format{
	Decode: func(req Request, lim Limits) (Decoded, error) {
		records, err := Split(req.Body, lim.MaxRecordBytes)
		return Decoded{Records: records}, err
	},
	Stored: func(_ Request, d Decoded) Answer {
		return Answer{http.StatusOK, "application/json", fmt.Appendf(nil, `{"accepted":%d}`, len(d.Records))}
	},
}

// Limits bound what a Format decodes: a body undone from its own encoding (snappy) is no
// larger than MaxBodyBytes, as one undone from gzip is not; no record is larger than
// MaxRecordBytes (the broker's limit).
type Limits struct {
	MaxBodyBytes   int64
	MaxRecordBytes int
}

// Receiver serves its routes and stores what is POSTed to them. Its admission and storing
// (Admit, Store) also serve receivers of other protocols (OTLP/gRPC).
type Receiver struct {
	cfg     Config
	routes  Routes
	store   Store
	log     *slog.Logger
	metrics Metrics
	slots   chan struct{}
	srv     *http.Server
	ln      net.Listener
}

// New returns a receiver for cfg taking routes; Start makes it listen.
func New(cfg Config, routes Routes, store Store, log *slog.Logger, m Metrics) *Receiver {
	return &Receiver{cfg: cfg, routes: routes, store: store, log: log, metrics: m, slots: make(chan struct{}, max(cfg.MaxInFlight, 1))}
}

// Start listens on the configured address and serves until Shutdown.
func (r *Receiver) Start() error {
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ln, err := netguard.Serve(r.cfg.Listen, netguard.Options{Name: "http input " + r.cfg.Stream, Logger: r.log}, r.srv.Serve, http.ErrServerClosed)
	if err != nil {
		return fmt.Errorf("http input of stream %s: %w", r.cfg.Stream, err)
	}
	r.ln = ln
	return nil
}

// Addr is the address the receiver listens on (with the port chosen for ":0").
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

// Shutdown stops taking requests and waits (until ctx ends) for those being stored.
func (r *Receiver) Shutdown(ctx context.Context) error {
	if r.srv == nil {
		return nil
	}
	return r.srv.Shutdown(ctx)
}

// ServeHTTP answers one request: see the package doc for what each answer means.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ans := r.serve(req)
	if ans.Code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	if ans.Code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if ans.ContentType != "" {
		w.Header().Set("Content-Type", ans.ContentType)
	}
	w.WriteHeader(ans.Code)
	_, _ = w.Write(ans.Body)
	r.count(strconv.Itoa(ans.Code))
}

func (r *Receiver) count(code string) {
	if r.metrics.Requests != nil {
		r.metrics.Requests(code)
	}
}

// serve answers req.
func (r *Receiver) serve(req *http.Request) Answer {
	format, ok := r.routes[req.URL.Path]
	switch {
	case !ok:
		return jsonError(http.StatusNotFound, fmt.Errorf("records are POSTed to %s", strings.Join(slices.Sorted(maps.Keys(r.routes)), " or ")))
	case req.Method != http.MethodPost:
		return jsonError(http.StatusMethodNotAllowed, errors.New("records are sent with POST"))
	}
	in := Request{ContentType: req.Header.Get("Content-Type")}
	release, err := r.Admit()
	if err != nil {
		return format.fail(in, http.StatusTooManyRequests, err)
	}
	body, code, err := r.readBody(req, format)
	if err != nil {
		release()
		return format.fail(in, code, err)
	}
	in.Body = body
	decoded, err := format.Decode(in, Limits{MaxBodyBytes: r.cfg.MaxBodyBytes, MaxRecordBytes: r.cfg.MaxRecordBytes})
	if err != nil {
		release()
		return format.fail(in, statusOf(err), err)
	}
	if err := r.Store(req.Context(), decoded, release); err != nil {
		return format.fail(in, statusOf(err), err)
	}
	return format.Stored(in, decoded)
}

func (f Format) fail(req Request, code int, err error) Answer {
	if f.Failed == nil {
		return jsonError(code, err)
	}
	return f.Failed(req, code, err)
}

// ErrBusy is Admit's answer when max_in_flight requests are being stored already.
var ErrBusy = errors.New("busy")

// Admit takes one of the max_in_flight slots for a request, or says ErrBusy; release gives
// it back (Store does, once the request's write ends).
func (r *Receiver) Admit() (release func(), err error) {
	select {
	case r.slots <- struct{}{}:
		return func() { <-r.slots }, nil
	default:
		return nil, fmt.Errorf("%d requests are being stored already; send again after Retry-After: %w", cap(r.slots), ErrBusy)
	}
}

// ErrNotStored is Store's answer when the broker did not take the records in time: the
// client is to send them again (429, RESOURCE_EXHAUSTED).
var ErrNotStored = errors.New("not stored")

// Store stores d's records within the timeout, and releases the request's slot once the
// write ends. A write the broker has not finished by then goes on (it may still store the
// records: the client, told to send again, then stores them twice) and keeps its slot, so
// that writes stuck on a broker that is gone stop new requests at max_in_flight. An error
// wraps ErrNotStored (send again) or says which record the broker refused (do not).
func (r *Receiver) Store(reqCtx context.Context, d Decoded, release func()) error {
	if len(d.Records) == 0 { // an empty OTLP request, or one whose every item was left out
		release()
		r.counted(d)
		return nil
	}
	batch := make([]*engine.Record, len(d.Records))
	for i, raw := range d.Records {
		batch[i] = &engine.Record{Raw: raw}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), r.cfg.Timeout)
	var rejects engine.Rejects
	done := make(chan error, 1)
	go func() {
		defer release()
		defer cancel()
		done <- r.store.Write(ctx, batch, &rejects)
	}()
	// The answer waits on a timer of its own, not on ctx: the write cancels ctx as it ends,
	// right after it reports, and a select that saw both might answer a stored write as not
	// stored (it did, once, under load), and the client would store it again.
	timeout := time.NewTimer(r.cfg.Timeout)
	defer timeout.Stop()
	var err error
	select {
	case err = <-done:
	case <-timeout.C:
		err = context.DeadlineExceeded
	case <-reqCtx.Done(): // the client went away
		err = reqCtx.Err()
	}
	if err != nil {
		r.log.Warn("could not store a request", "stream", r.cfg.Stream, "records", len(batch), "err", err)
		return fmt.Errorf("topic %s did not take the records in %v: %w; send again after Retry-After: %w", r.cfg.Topic, r.cfg.Timeout, err, ErrNotStored)
	}
	if len(rejects.Items) > 0 {
		// The format checked the sizes, so this is a record the broker refused for another reason.
		return fmt.Errorf("record %d: %w", indexOf(batch, rejects.Items[0].Record), rejects.Items[0].Err)
	}
	r.counted(d)
	return nil
}

func (r *Receiver) counted(d Decoded) {
	if r.metrics.Records != nil {
		r.metrics.Records(len(d.Records))
	}
	if r.metrics.Rejected != nil && d.Rejected > 0 {
		r.metrics.Rejected(d.Rejected)
	}
}

func indexOf(batch []*engine.Record, rec *engine.Record) int {
	for i, r := range batch {
		if r == rec {
			return i + 1
		}
	}
	return 0
}

// readBody reads the request's body, undoing gzip, within MaxBodyBytes.
func (r *Receiver) readBody(req *http.Request, format Format) ([]byte, int, error) {
	var in io.Reader = http.MaxBytesReader(nil, req.Body, r.cfg.MaxBodyBytes)
	switch enc := req.Header.Get("Content-Encoding"); {
	case enc == "" || enc == "identity" || slices.Contains(format.Encodings, enc):
	case enc == "gzip":
		gz, err := gzip.NewReader(in)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("the body is not gzip: %w", err)
		}
		in = io.LimitReader(gz, r.cfg.MaxBodyBytes+1)
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: send the body plain or %s", enc, strings.Join(append([]string{"gzip"}, format.Encodings...), " or "))
	}
	body, err := io.ReadAll(in)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || int64(len(body)) > r.cfg.MaxBodyBytes:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is over max_body_bytes (%d bytes): send fewer records per request", r.cfg.MaxBodyBytes)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	return body, 0, nil
}

func jsonError(code int, err error) Answer {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	return Answer{code, "application/json", b}
}

// ErrTooLarge marks a record over the broker's limit; ErrMediaType a Content-Type the
// format does not take.
var (
	ErrTooLarge  = errors.New("record too large")
	ErrMediaType = errors.New("unsupported media type")
)

// statusOf is the HTTP status that answers err, from Decode or Store.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrNotStored), errors.Is(err, ErrBusy):
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

// Split cuts body into its records: one JSON object, a JSON array of objects, or objects
// one after another (newline-delimited JSON; blank lines are skipped). Each record keeps the
// bytes it was sent as. An error names the record and the line and column where the body
// stops being what it should, and a record over maxRecordBytes is ErrTooLarge.
func Split(body []byte, maxRecordBytes int) ([][]byte, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("the body holds no records: send a JSON object, an array of them, or one object per line")
	}
	if trimmed[0] != '[' {
		if records, ok := splitLines(body, maxRecordBytes); ok {
			return records, nil
		}
	}
	return splitAny(body, trimmed[0] == '[', maxRecordBytes)
}

// splitAny is Split for any body: an array, or objects one after another however they are
// laid out.
func splitAny(body []byte, isArray bool, maxRecordBytes int) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if isArray {
		return splitArray(body, dec, maxRecordBytes)
	}
	var records [][]byte
	for {
		start := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return records, nil
		}
		rec, err := checkRecord(body, raw, err, dec, len(records)+1, start, maxRecordBytes)
		if err != nil {
			return nil, err
		}
		records = append(records, rec)
	}
}

// splitLines is the quick way through the usual body, one object per line: each line is
// checked once, where the general way scans each record twice. ok is false when any line is
// not one whole object within maxRecordBytes (an object over several lines, say): the general
// way then takes the body, and says where it is wrong if it is.
func splitLines(body []byte, maxRecordBytes int) (records [][]byte, ok bool) {
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		line = bytes.Trim(line, " \t\r")
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' || maxRecordBytes > 0 && len(line) > maxRecordBytes || !json.Valid(line) {
			return nil, false
		}
		records = append(records, line)
	}
	return records, len(records) > 0
}

func splitArray(body []byte, dec *json.Decoder, maxRecordBytes int) ([][]byte, error) {
	if _, err := dec.Token(); err != nil { // [
		return nil, syntaxError(body, err, dec.InputOffset(), 1)
	}
	var records [][]byte
	for dec.More() {
		start := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		rec, err := checkRecord(body, raw, err, dec, len(records)+1, start, maxRecordBytes)
		if err != nil {
			return nil, err
		}
		records = append(records, rec)
	}
	if _, err := dec.Token(); err != nil { // ]
		return nil, syntaxError(body, err, dec.InputOffset(), len(records)+1)
	}
	end := dec.InputOffset()
	if rest := body[end:]; len(bytes.TrimSpace(rest)) > 0 {
		extra := end + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
		return nil, fmt.Errorf("%s: the body goes on after its array: send one array or one object per line", position(body, extra))
	}
	if len(records) == 0 {
		return nil, errors.New("the array holds no records")
	}
	return records, nil
}

// checkRecord turns what the decoder read as record n (starting at offset start) into the
// record, or says what is wrong with it.
func checkRecord(body []byte, raw json.RawMessage, err error, dec *json.Decoder, n int, start int64, maxRecordBytes int) ([]byte, error) {
	if err != nil {
		return nil, syntaxError(body, err, dec.InputOffset(), n)
	}
	if raw[0] != '{' {
		rest := body[start:]
		first := start + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n,")))
		return nil, fmt.Errorf("record %d (%s): not a JSON object; every record is an object", n, position(body, first))
	}
	if maxRecordBytes > 0 && len(raw) > maxRecordBytes {
		return nil, fmt.Errorf("record %d: %d bytes, over the broker's max_record_bytes %d: %w", n, len(raw), maxRecordBytes, ErrTooLarge)
	}
	return raw, nil
}

func syntaxError(body []byte, err error, offset int64, n int) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		offset = se.Offset - 1 // the byte it stopped at, not the one after
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		offset = int64(len(body))
	}
	return fmt.Errorf("record %d (%s): malformed JSON: %w", n, position(body, offset), err)
}

// position is "line L, column C" of byte offset in body (both from 1).
func position(body []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(body)))
	before := body[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}
