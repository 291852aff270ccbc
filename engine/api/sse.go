package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// backfillTimeout bounds reading old events back from the broker for a reconnecting client.
const backfillTimeout = 10 * time.Second

// Event ids.
//
// An SSE id is the client's position in the topic: for every partition, the offset of the
// next record it has not seen, written "0:42,1:17,2:9". A client that reconnects with
// Last-Event-ID therefore resumes exactly after the last event it received, whichever
// partitions the events came from, and the id stays valid across server restarts (as long
// as the broker still holds the records).
type position map[int32]int64

func (p position) String() string {
	parts := make([]int32, 0, len(p))
	for k := range p {
		parts = append(parts, k)
	}
	slices.Sort(parts)
	var b strings.Builder
	for i, k := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(k), 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(p[k], 10))
	}
	return b.String()
}

func (p position) clone() position {
	out := make(position, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// parsePosition reads an event id ("partition:offset,..."); "" is no position (the client
// starts live), anything else that is not one is an error.
func parsePosition(id string) (position, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, nil
	}
	pos := position{}
	for _, part := range strings.Split(id, ",") {
		ps, os, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("Last-Event-ID %q: want partition:offset pairs separated by commas, as the events' ids are", id)
		}
		p, err1 := strconv.ParseInt(ps, 10, 32)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if err1 != nil || err2 != nil || p < 0 || o < 0 {
			return nil, fmt.Errorf("Last-Event-ID %q: %q is not a partition:offset pair of non-negative integers", id, part)
		}
		pos[int32(p)] = o
	}
	return pos, nil
}

// event is one record of the topic, ready to send, or a notice about the server (name set).
type event struct {
	partition int32
	offset    int64
	data      []byte // the record value as one line of JSON
	// name is the SSE event type of a notice (such as "reload"). A notice is not a record:
	// it has no id, so a client's Last-Event-ID stays its position in the topic, and it is
	// not replayed to clients that connect later.
	name string
	// tenant is the record's tenant_id ("" when it has none): a client with a tenant-bound
	// token is sent only its tenant's records.
	tenant string
}

// recordEvent is the event of a record read from the hub's topic. Its tenant is read only
// when a token bound to a tenant may stream it: a decode per event otherwise wasted.
func (h *hub) recordEvent(r *kgo.Record) *event {
	ev := &event{partition: r.Partition, offset: r.Offset, data: eventData(r.Value)}
	if h.tenants {
		var t struct {
			Tenant string `json:"tenant_id"`
		}
		_ = json.Unmarshal(r.Value, &t) // a value that is no object has no tenant
		ev.tenant = t.Tenant
	}
	return ev
}

// eventData turns a record value into one line: JSON is compacted, anything else becomes a
// JSON string, because an SSE data field ends at the first newline.
func eventData(value []byte) []byte {
	var buf bytes.Buffer
	if json.Valid(value) {
		if err := json.Compact(&buf, value); err == nil {
			return buf.Bytes()
		}
	}
	b, _ := json.Marshal(string(value))
	return b
}

// hub is the one consumer of a topic and the clients listening to it. Publishing never
// waits for a client: a client whose buffer is full is disconnected.
type hub struct {
	started bool // its consumer runs (set under Server.hubsMu)
	topic   string
	tenants bool // a tenant-bound token may stream it: events carry their tenant
	opts    []kgo.Opt
	replay  int
	log     *slog.Logger

	mu         sync.Mutex
	cl         *kgo.Client
	positioned bool
	next       position // offset after the newest event, per partition
	base       position // offset of the oldest event still in the ring, per partition
	ring       []*event // oldest first, at most replay long
	clients    map[*sseClient]struct{}
}

// sseClient is one connected stream.
type sseClient struct {
	ch       chan *event
	gone     chan struct{} // closed when the hub drops the client
	dropOnce sync.Once
	onDrop   func()
}

func (c *sseClient) drop() {
	c.dropOnce.Do(func() {
		close(c.gone)
		if c.onDrop != nil {
			c.onDrop()
		}
	})
}

func newHub(topic string, opts []kgo.Opt, replay int, tenants bool, log *slog.Logger) *hub {
	return &hub{
		topic:   topic,
		tenants: tenants,
		// Alerts written by a stateful stream commit with its checkpoint: a client sees an
		// alert once, and never one whose transaction was aborted (it is written again).
		opts:    append(slices.Clip(opts), kgo.FetchIsolationLevel(kgo.ReadCommitted())),
		replay:  replay,
		log:     log.With("topic", topic),
		next:    position{},
		base:    position{},
		clients: map[*sseClient]struct{}{},
	}
}

// position finds the end of every partition and starts consuming there.
func (h *hub) position(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.positioned {
		return nil
	}
	if h.cl == nil {
		cl, err := kgo.NewClient(h.opts...)
		if err != nil {
			return fmt.Errorf("kafka client for %s: %w", h.topic, err)
		}
		h.cl = cl
	}
	ends, err := kadm.NewClient(h.cl).ListEndOffsets(ctx, h.topic)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", h.topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("end offsets of %s: %w", h.topic, err)
	}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic != h.topic {
			return
		}
		parts[o.Partition] = kgo.NewOffset().At(o.Offset)
		h.next[o.Partition] = o.Offset
		h.base[o.Partition] = o.Offset
	})
	if len(parts) == 0 {
		return fmt.Errorf("topic %s not found", h.topic)
	}
	h.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{h.topic: parts})
	h.positioned = true
	return nil
}

// run consumes the topic until ctx is done.
func (h *hub) run(ctx context.Context) {
	defer func() {
		h.mu.Lock()
		if h.cl != nil {
			h.cl.Close()
		}
		for c := range h.clients {
			c.drop()
		}
		h.mu.Unlock()
	}()
	backoff := 100 * time.Millisecond
	for {
		err := h.position(ctx)
		if err == nil {
			break
		}
		h.log.Warn("api: SSE consumer cannot position", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	h.mu.Lock()
	cl := h.cl
	h.mu.Unlock()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			h.log.Warn("api: SSE consumer fetch error", "partition", p, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			h.publish(h.recordEvent(r))
		})
	}
}

func (h *hub) publish(ev *event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next[ev.partition] = ev.offset + 1
	if len(h.ring) >= h.replay {
		old := h.ring[0]
		h.base[old.partition] = old.offset + 1
		h.ring[0] = nil
		h.ring = h.ring[1:]
	}
	if _, ok := h.base[ev.partition]; !ok {
		h.base[ev.partition] = ev.offset
	}
	h.ring = append(h.ring, ev)
	h.sendLocked(ev)
}

// sendLocked hands ev to every client (h.mu held); a client whose buffer is full is
// disconnected rather than waited for.
func (h *hub) sendLocked(ev *event) {
	for c := range h.clients {
		select {
		case c.ch <- ev:
		default:
			delete(h.clients, c)
			c.drop()
		}
	}
}

// notify sends a notice to the clients connected now. Like publish, it never waits: a
// client whose buffer is full is disconnected.
func (h *hub) notify(ev *event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked(ev)
}

// subscription is what a new client starts from.
type subscription struct {
	client *sseClient
	cursor position           // the client's position before the first event below
	gaps   map[int32][2]int64 // offset ranges [from, to) older than the ring, per partition
	replay []*event           // ring events after the client's position
	// reset lists the partitions whose resume offset lay beyond their end: they start from
	// the end, and the client is told with an event "reset".
	reset []int32
}

// subscribe registers a client. With a resume position it also returns what the client
// missed: ring events after it and the older ranges that must be read from the broker.
// Registration and the ring snapshot happen together, so nothing falls between them.
func (h *hub) subscribe(resume position, buffer int, onDrop func()) (subscription, error) {
	c := &sseClient{ch: make(chan *event, buffer), gone: make(chan struct{}), onDrop: onDrop}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkPartitionsLocked(resume); err != nil {
		return subscription{}, err
	}
	h.clients[c] = struct{}{}
	// Partitions the position does not name start from now, as a client without one does.
	sub := subscription{client: c, cursor: h.next.clone(), gaps: map[int32][2]int64{}}
	for p, from := range resume {
		if end, ok := h.next[p]; ok && from > end {
			sub.reset = append(sub.reset, p) // beyond the end: the topic was recreated or truncated
			continue
		}
		sub.cursor[p] = from
		if b, ok := h.base[p]; ok && from < b {
			sub.gaps[p] = [2]int64{from, b}
		}
	}
	slices.Sort(sub.reset)
	for _, ev := range h.ring {
		if ev.offset >= sub.cursor[ev.partition] {
			sub.replay = append(sub.replay, ev)
		}
	}
	return sub, nil
}

// errUnknownPartition is a resume position naming a partition the topic does not have.
var errUnknownPartition = errors.New("unknown partition")

// checkPartitionsLocked refuses a position naming a partition the topic does not have, once
// the hub knows the topic's partitions.
func (h *hub) checkPartitionsLocked(resume position) error {
	if !h.positioned {
		return nil
	}
	for p := range resume {
		if _, ok := h.next[p]; !ok {
			return fmt.Errorf("%w: Last-Event-ID names partition %d, and topic %s has partitions 0 to %d", errUnknownPartition, p, h.topic, len(h.next)-1)
		}
	}
	return nil
}

func (h *hub) unsubscribe(c *sseClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// backfill reads the given offset ranges from the broker and calls emit for each record in
// partition order. It is for clients that reconnect with an id older than the ring.
func (h *hub) backfill(ctx context.Context, gaps map[int32][2]int64, emit func(*event) error) error {
	if len(gaps) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, backfillTimeout)
	defer cancel()
	start := map[int32]kgo.Offset{}
	for p, g := range gaps {
		start[p] = kgo.NewOffset().At(g[0])
	}
	opts := append(slices.Clip(h.opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{h.topic: start}),
		kgo.FetchMaxWait(100*time.Millisecond),
		// A gap may end with a transaction marker: keep markers so its end is seen.
		kgo.KeepControlRecords())
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client for replay of %s: %w", h.topic, err)
	}
	defer cl.Close()

	pending := map[int32]bool{}
	for p := range gaps {
		pending[p] = true
	}
	byPartition := map[int32][]*event{}
	for len(pending) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("replay of %s: %w", h.topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			g, ok := gaps[r.Partition]
			if !ok || !pending[r.Partition] {
				return
			}
			if r.Offset < g[1] && !r.Attrs.IsControl() {
				byPartition[r.Partition] = append(byPartition[r.Partition], h.recordEvent(r))
			}
			if r.Offset >= g[1]-1 {
				pending[r.Partition] = false
				delete(pending, r.Partition)
			}
		})
	}
	parts := make([]int32, 0, len(byPartition))
	for p := range byPartition {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		for _, ev := range byPartition[p] {
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// streamRoute serves one topic as Server-Sent Events.
type streamRoute struct {
	srv   *Server
	hub   *hub
	path  string
	event string
}

// eventName is the SSE event type of a stream route: its last meaningful path segment in
// the singular, so /alerts/stream sends "event: alert". Generic segments (stream, sse,
// events, live) and parameters are skipped; with nothing left it is "message", the type an
// EventSource's onmessage receives.
func eventName(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		s := strings.ToLower(segs[i])
		switch {
		case s == "", s == "stream", s == "sse", s == "events", s == "live", strings.HasPrefix(s, ":"), strings.HasPrefix(s, "*"):
			continue
		}
		if len(s) > 1 && strings.HasSuffix(s, "s") && !strings.HasSuffix(s, "ss") && !strings.HasSuffix(s, "us") {
			s = s[:len(s)-1]
		}
		return s
	}
	return "message"
}

func (r *streamRoute) serve(c *fiber.Ctx) error {
	deps := r.srv.deps
	tenant := ""
	if who := principalOf(c); who != nil {
		tenant = who.tenant
	}
	resume, err := parsePosition(c.Get("Last-Event-ID"))
	if err != nil {
		return jsonError(c, fiber.StatusBadRequest, "%v", err)
	}
	conn := c.Context().Conn()

	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream

	onDrop := func() {
		deps.Metrics.SSEDropped.WithLabelValues(r.path).Inc()
		r.srv.log.Warn("api: SSE client too slow, disconnected", "path", r.path, "remote", conn.RemoteAddr().String())
		// The writer may be blocked on a client that stopped reading; closing the
		// connection is what unblocks it.
		_ = conn.Close()
	}
	// The server's write deadline, set once before a response is written, would end every
	// stream after write_timeout. A stream has no end, so each write to the client gets its
	// own deadline instead: a client that stops reading is still cut off, a healthy stream
	// never is.
	if cc, ok := conn.(*clientConn); ok {
		cc.deadlinePerWrite(r.srv.limits.writeTimeout)
	}
	sub, err := r.hub.subscribe(resume, deps.ClientBuffer, onDrop)
	if err != nil {
		return jsonError(c, fiber.StatusBadRequest, "%v", err)
	}
	gauge := deps.Metrics.SSEClients.WithLabelValues(r.path)
	gauge.Inc()
	ctx := c.UserContext()

	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer gauge.Dec()
		defer r.hub.unsubscribe(sub.client)
		if err := r.stream(ctx, w, sub, conn, tenant); err != nil && !errors.Is(err, errStreamEnded) {
			r.srv.log.Debug("api: SSE client gone", "path", r.path, "err", err)
		}
	})
	return nil
}

var errStreamEnded = errors.New("stream ended")

func (r *streamRoute) stream(ctx context.Context, w *bufio.Writer, sub subscription, conn net.Conn, tenant string) error {
	cursor := sub.cursor
	send := func(ev *event) error {
		if ev.name != "" {
			fmt.Fprintf(w, "event: %s\ndata: ", ev.name)
			w.Write(ev.data)
			w.WriteString("\n\n")
			return w.Flush()
		}
		if from, ok := cursor[ev.partition]; ok && ev.offset < from {
			return nil // already seen (the replay and the live feed can overlap a resume point)
		}
		cursor[ev.partition] = ev.offset + 1
		if tenant != "" && ev.tenant != tenant {
			return nil // another tenant's record: passed over, so a resume starts after it
		}
		fmt.Fprintf(w, "id: %s\nevent: %s\ndata: ", cursor, r.event)
		w.Write(ev.data)
		w.WriteString("\n\n")
		return w.Flush()
	}
	// A first comment sends the headers at once, so the client knows it is connected.
	if _, err := w.WriteString(": connected\n\n"); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(sub.reset) > 0 {
		if err := sendReset(w, sub); err != nil {
			return err
		}
	}
	if err := r.hub.backfill(ctx, sub.gaps, send); err != nil {
		r.srv.log.Warn("api: SSE replay from the broker failed; the client resumes from the in-memory ring", "path", r.path, "err", err)
	}
	for _, ev := range sub.replay {
		if err := send(ev); err != nil {
			return err
		}
	}
	heartbeat := time.NewTicker(r.srv.deps.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev := <-sub.client.ch:
			if err := send(ev); err != nil {
				return err
			}
		case <-heartbeat.C:
			if _, err := w.WriteString(": ping\n\n"); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		case <-sub.client.gone:
			return errStreamEnded
		case <-r.srv.done:
			return errStreamEnded
		}
	}
}

// sendReset tells a client that its position lay beyond the end of partitions (the topic was
// recreated or truncated): they resume from their end, the id given.
func sendReset(w *bufio.Writer, sub subscription) error {
	data, _ := json.Marshal(map[string]any{"partitions": sub.reset, "id": sub.cursor.String()})
	fmt.Fprintf(w, "event: reset\ndata: %s\n\n", data)
	return w.Flush()
}
