package webhook

import (
	"fmt"
	"slices"

	"github.com/eventops/eventops-engine/config"
)

// request is one HTTP request: the records it carries and its body.
type request struct {
	items []*item
	body  []byte
	idem  string
	// after are the requests that carry earlier records of this one's keys: this one is
	// sent once they are settled (delivered or given up).
	after []*request
	done  chan struct{}

	// The outcome: failure says why its records are dead letters (nil: delivered), reason
	// names it for metrics; cancelled says the Write was cancelled before it settled.
	failure   error
	reason    string
	cancelled bool
}

// Reasons a record is given up, the label of eventops_webhook_dead_lettered_total.
const (
	reasonRejected  = "rejected"  // a status that retrying cannot fix
	reasonExhausted = "exhausted" // max_attempts or max_elapsed
	reasonTooLarge  = "too_large" // over max_body_bytes
	reasonInvalid   = "invalid"   // cannot be encoded in the format
)

// settled is an item given up before any request, and why.
type settled struct {
	it     *item
	reason string
	err    error
}

// planner splits a batch's items into requests.
type planner struct {
	enc        encoder
	maxRecords int
	maxBody    int
	// onePerKey keeps each key at most once in a request: an Alertmanager notification
	// holds each alert (fingerprint) once, so a second transition of an alert in the same
	// batch (firing, then resolved) goes in the next request, after the first.
	onePerKey bool
}

// plan makes the requests for items (in batch order), in an order in which each key's
// records come in batch order: a request holds items of one group, at most maxRecords,
// and its body fits maxBody. Items that fit no request come back as given up.
//
// A request of a group is kept open to fill while the next items come; an item whose key's
// previous item is in another group's open request closes that request first, so that
// requests, in the order they close, never carry a key's records out of order (a key
// changes groups when an alert's labels change between two transitions).
func (p planner) plan(items []*item) ([]*request, []settled) {
	var (
		reqs   []*request
		failed []settled
		open   = map[string][]*item{} // group key -> its open request's items
		order  []string               // group keys in the order their requests opened
		inOpen = map[string]string{}  // order key -> group of the open request holding its last item
	)
	closeGroup := func(g string) {
		chunk := open[g]
		delete(open, g)
		for _, it := range chunk {
			if it.key != "" && inOpen[it.key] == g {
				delete(inOpen, it.key)
			}
		}
		r, f := p.sized(chunk)
		reqs, failed = append(reqs, r...), append(failed, f...)
	}
	for _, it := range items {
		g := it.groupKey
		if prev, ok := inOpen[it.key]; ok && it.key != "" && (prev != g || p.onePerKey) {
			closeGroup(prev)
		}
		if _, ok := open[g]; !ok {
			order = append(order, g)
		}
		open[g] = append(open[g], it)
		if it.key != "" {
			inOpen[it.key] = g
		}
		if len(open[g]) >= p.maxRecords {
			closeGroup(g)
		}
	}
	for _, g := range order {
		if _, ok := open[g]; ok {
			closeGroup(g)
		}
	}
	link(reqs)
	return reqs, failed
}

// sized makes the requests for chunk: one, or when its body is over maxBody, those of its
// halves; a single item over maxBody is given up.
func (p planner) sized(chunk []*item) ([]*request, []settled) {
	body, err := p.enc.body(chunk)
	if err != nil {
		return nil, giveUp(chunk, reasonInvalid, err)
	}
	if len(body) <= p.maxBody {
		r := &request{items: chunk, body: body, done: make(chan struct{})}
		r.idem = chunk[0].idem
		if len(chunk) > 1 {
			r.idem = batchKey(chunk)
		}
		return []*request{r}, nil
	}
	if len(chunk) == 1 {
		err := fmt.Errorf("the request body would be %d bytes, over max_body_bytes (%s); not sent", len(body), config.Size(p.maxBody))
		return nil, giveUp(chunk, reasonTooLarge, err)
	}
	half := len(chunk) / 2
	r1, f1 := p.sized(chunk[:half])
	r2, f2 := p.sized(chunk[half:])
	return append(r1, r2...), append(f1, f2...)
}

func giveUp(items []*item, reason string, err error) []settled {
	out := make([]settled, len(items))
	for i, it := range items {
		out[i] = settled{it: it, reason: reason, err: err}
	}
	return out
}

// link makes each request wait for the last earlier request that carries one of its keys.
func link(reqs []*request) {
	last := map[string]*request{}
	for _, r := range reqs {
		for _, it := range r.items {
			if it.key == "" {
				continue
			}
			if prev := last[it.key]; prev != nil && prev != r && !slices.Contains(r.after, prev) {
				r.after = append(r.after, prev)
			}
			last[it.key] = r
		}
	}
}
