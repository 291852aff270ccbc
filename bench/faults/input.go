package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The input is rounds of readings: every 10 s of event time each host sends each metric
// once. Most readings are sent at once, some up to 20 s later (the rollup's lateness is
// 30 s, so they still count), one in a thousand 3 to 5 minutes later (late: ops.late.v1),
// and two in a thousand are bad records (malformed JSON or schema violations: the
// dead-letter topic). A few hosts run hot for some minutes, so cpu alerts fire, escalate
// and resolve. Everything comes from the seed: the same options give the same bytes.
const (
	roundEvery   = 10 * time.Second
	ingestTopic  = "ingest.raw.agent"
	oversizedTag = "oversized-"
)

var (
	inputBase = time.Date(2025, 10, 16, 0, 0, 0, 0, time.UTC)
	metrics   = []string{"cpu_load", "mem_used_pct", "disk_io_ms"}
)

// input is the records produced to ingest.raw.agent, in order (one partition: offset i is
// record i).
type input struct {
	records [][]byte
	// extra are the offsets of records the clean run's input does not have (oversized).
	extra []int64
}

type reading struct {
	host, metric int
	at           time.Time // event time
	send         time.Time // when it is sent, in event time: at + its delay
	value        float64
}

// makeInput builds n records for hosts hosts from seed.
func makeInput(n, hosts int, seed uint64) *input {
	rng := rand.New(rand.NewPCG(seed, 0x17))
	hot := hotEpisodes(rng, hosts, n)
	perRound := hosts * len(metrics)
	var rs []reading
	for r := 0; len(rs) < n; r++ {
		round := inputBase.Add(time.Duration(r) * roundEvery)
		for i := 0; i < perRound && len(rs) < n; i++ {
			h, m := i/len(metrics), i%len(metrics)
			at := round.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
			rs = append(rs, reading{host: h, metric: m, at: at, send: at.Add(sendDelay(rng)), value: value(rng, hot, h, m, r)})
		}
	}
	slices.SortStableFunc(rs, func(a, b reading) int { return a.send.Compare(b.send) })
	in := &input{records: make([][]byte, 0, n)}
	for i, rd := range rs {
		in.records = append(in.records, encodeReading(rng, i, rd))
	}
	return in
}

// sendDelay: 85% at once, 15% up to 20 s later, 0.1% 3 to 5 minutes later.
func sendDelay(rng *rand.Rand) time.Duration {
	switch p := rng.IntN(1000); {
	case p == 0:
		return 3*time.Minute + time.Duration(rng.IntN(120_000))*time.Millisecond
	case p < 150:
		return time.Duration(rng.IntN(20_000)) * time.Millisecond
	}
	return 0
}

// hotEpisodes gives every 25th host a few spans of rounds where its cpu runs hot.
func hotEpisodes(rng *rand.Rand, hosts, n int) map[int][][2]int {
	rounds := n/(hosts*len(metrics)) + 1
	hot := map[int][][2]int{}
	for h := 0; h < hosts; h += 25 {
		for start := rng.IntN(30); start < rounds; start += 40 + rng.IntN(120) {
			length := 18 + rng.IntN(42) // 3 to 10 minutes
			hot[h] = append(hot[h], [2]int{start, start + length})
		}
	}
	return hot
}

func value(rng *rand.Rand, hot map[int][][2]int, h, m, round int) float64 {
	switch metrics[m] {
	case "cpu_load":
		for _, ep := range hot[h] {
			if round >= ep[0] && round < ep[1] {
				// warning, and critical in the middle of the episode
				peak := 84.0
				if round >= ep[0]+12 && round < ep[1]-6 {
					peak = 93
				}
				return round2(peak + rng.NormFloat64()*2)
			}
		}
		return round2(20 + float64((h*37)%40) + rng.NormFloat64()*5)
	case "mem_used_pct":
		return round2(40 + float64((h*13)%30) + rng.NormFloat64()*3)
	}
	return round2(math.Abs(5 + rng.NormFloat64()*4))
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// encodeReading writes reading i as JSON, or, two times in a thousand, as a bad record
// (each unique, so that its dead letter can be told apart).
func encodeReading(rng *rand.Rand, i int, rd reading) []byte {
	host := fmt.Sprintf("host-%03d", rd.host)
	tenant := fmt.Sprintf("tenant-%d", rd.host%5)
	ts := rd.at.Format(time.RFC3339Nano)
	switch rng.IntN(1000) {
	case 0: // malformed JSON: cut off
		return fmt.Appendf(nil, `{"tenant_id":"%s","host":"%s","metric":"%s","value":%g,"ts_event":"%s","seq":%d`, tenant, host, metrics[rd.metric], rd.value, ts, i)
	case 1: // schema violations: a string value, a missing host, a bad metric name
		switch i % 3 {
		case 0:
			return fmt.Appendf(nil, `{"tenant_id":"%s","host":"%s","metric":"%s","value":"high-%d","ts_event":"%s"}`, tenant, host, metrics[rd.metric], i, ts)
		case 1:
			return fmt.Appendf(nil, `{"tenant_id":"%s","metric":"%s","value":%d,"ts_event":"%s"}`, tenant, metrics[rd.metric], i, ts)
		default:
			return fmt.Appendf(nil, `{"tenant_id":"%s","host":"%s","metric":"9 bad %d","value":1,"ts_event":"%s"}`, tenant, host, i, ts)
		}
	}
	return fmt.Appendf(nil, `{"tenant_id":"%s","host":"%s","metric":"%s","value":%g,"ts_event":"%s","unit":"%s","tags":{"env":"prod"}}`,
		tenant, host, metrics[rd.metric], rd.value, ts, unit(rd.metric))
}

func unit(m int) string {
	if metrics[m] == "disk_io_ms" {
		return "ms"
	}
	return "percent"
}

// withOversized returns the input with a 5 MB event and an event with a 1 MB host name in
// the middle. Both are valid readings of hosts of their own, so nothing else depends on them.
func (in *input) withOversized() *input {
	at := len(in.records) / 2
	ts := eventTimeNear(in.records[at-1 : at+1])
	blob := fmt.Appendf(nil, `{"tenant_id":"tenant-0","host":"%sblob","metric":"cpu_load","value":50,"ts_event":"%s","tags":{"blob":"%s"}}`,
		oversizedTag, ts, strings.Repeat("x", 5<<20))
	longHost := fmt.Appendf(nil, `{"tenant_id":"tenant-0","host":"%s%s","metric":"cpu_load","value":50,"ts_event":"%s"}`,
		oversizedTag, strings.Repeat("h", 1<<20-200), ts)
	out := &input{records: make([][]byte, 0, len(in.records)+2)}
	out.records = append(out.records, in.records[:at]...)
	out.records = append(out.records, blob, longHost)
	out.records = append(out.records, in.records[at:]...)
	out.extra = []int64{int64(at), int64(at + 1)}
	return out
}

// eventTimeNear is the ts_event of the first well-formed record of recs.
func eventTimeNear(recs [][]byte) string {
	for _, r := range recs {
		var v struct {
			TS string `json:"ts_event"`
		}
		if json.Unmarshal(r, &v) == nil && v.TS != "" {
			return v.TS
		}
	}
	return inputBase.Format(time.RFC3339Nano)
}

// seqOf maps an offset of ingest.raw.agent to the record's position in the clean input
// (which has no extra records), or -1 for an extra record.
func (in *input) seqOf(offset int64) int64 {
	before := int64(0)
	for _, x := range in.extra {
		switch {
		case x == offset:
			return -1
		case x < offset:
			before++
		}
	}
	return offset - before
}

// produce writes the input to ingest.raw.agent in order and checks that record i has
// offset i, which the comparison relies on.
func (in *input) produce(ctx context.Context, brokers string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(8<<20), kgo.MaxBufferedBytes(64<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	const chunk = 10_000
	for i := 0; i < len(in.records); i += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for _, v := range in.records[i:min(i+chunk, len(in.records))] {
			recs = append(recs, &kgo.Record{Topic: ingestTopic, Partition: 0, Value: v})
		}
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			return fmt.Errorf("producing the input: %w", err)
		}
		for j, r := range res {
			if r.Record.Offset != int64(i+j) {
				return fmt.Errorf("producing the input: record %d got offset %d (is %s not empty?)", i+j, r.Record.Offset, ingestTopic)
			}
		}
	}
	return nil
}
