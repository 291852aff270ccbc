package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// The plain Go loop: the quickstart's work written by hand for these events, as a ceiling.
// It does what the engine's stream does — decode, check the raw-agent schema's constraints,
// build the envelope, merge the CMDB row into tags, evaluate the threshold ladder with its
// hysteresis per series, build the alert of each transition — with encoding/json and
// structs, and nothing general: no expressions, no configuration, no dead letters, no
// metrics.

type rawEvent struct {
	TenantID *string           `json:"tenant_id"`
	Host     *string           `json:"host"`
	Metric   *string           `json:"metric"`
	Value    *float64          `json:"value"`
	TsEvent  json.RawMessage   `json:"ts_event"`
	Unit     *string           `json:"unit"`
	Tags     map[string]string `json:"tags"`
}

type envelope struct {
	EventID       string
	TsEvent       time.Time
	TsIngest      time.Time
	TenantID      string
	SourceType    string
	SourceID      string
	SchemaName    string
	SchemaVersion int
	Metric        string
	Value         float64
	Unit          string
	Tags          map[string]string
}

type alert struct {
	Rule, Severity, State, Fingerprint, Message string
	Labels                                      map[string]string
	Value                                       float64
	At                                          time.Time
}

var metricName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]*$`)

// runLoop processes the events file and prints how many events, rejects and alerts it saw.
func runLoop(eventsFile, cmdbFile string) error {
	cmdb, err := readCMDB(cmdbFile)
	if err != nil {
		return err
	}
	f, err := os.Open(eventsFile)
	if err != nil {
		return err
	}
	defer f.Close()
	states := map[string]string{} // series → severity while firing
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var n, rejected, alerts int
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("file:"+eventsFile))
	for line := int64(0); sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		n++
		env, ok := normalize(sc.Bytes(), ns, line, cmdb)
		if !ok {
			rejected++
			continue
		}
		if a, ok := threshold(states, env); ok {
			alerts++
			_ = a
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Printf("events=%d rejected=%d alerts=%d\n", n, rejected, alerts)
	return nil
}

func normalize(line []byte, ns uuid.UUID, offset int64, cmdb map[string]map[string]string) (envelope, bool) {
	var raw rawEvent
	if err := json.Unmarshal(line, &raw); err != nil {
		return envelope{}, false
	}
	if raw.Host == nil || *raw.Host == "" || raw.Metric == nil || !metricName.MatchString(*raw.Metric) || raw.Value == nil ||
		raw.TenantID != nil && *raw.TenantID == "" {
		return envelope{}, false
	}
	env := envelope{
		EventID:  uuid.NewSHA1(ns, fmt.Appendf(nil, "0/%d", offset)).String(),
		TsIngest: time.Now(), TenantID: "default", SourceType: "host", SourceID: *raw.Host,
		SchemaName: "monitoring.envelope.v1", SchemaVersion: 1, Metric: *raw.Metric, Value: *raw.Value, Tags: raw.Tags,
	}
	env.TsEvent = env.TsIngest
	if len(raw.TsEvent) > 0 {
		var s string
		if json.Unmarshal(raw.TsEvent, &s) != nil {
			return envelope{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return envelope{}, false
		}
		env.TsEvent = t
	}
	if raw.TenantID != nil {
		env.TenantID = *raw.TenantID
	}
	if raw.Unit != nil {
		env.Unit = *raw.Unit
	}
	if env.Tags == nil {
		env.Tags = map[string]string{}
	}
	for k, v := range cmdb[env.SourceID] {
		env.Tags[k] = v
	}
	return env, true
}

func threshold(states map[string]string, env envelope) (alert, bool) {
	if env.Metric != "cpu_load" {
		return alert{}, false
	}
	series := env.TenantID + "\x00" + env.SourceID + "\x00" + env.Metric
	severity := ""
	switch {
	case env.Value >= 90:
		severity = "critical"
	case env.Value >= 80:
		severity = "warning"
	}
	current, firing := states[series]
	state := ""
	switch {
	case firing && env.Value < 75:
		delete(states, series)
		state, severity = "resolved", current
	case severity != "" && severity != current:
		states[series] = severity
		state = "firing"
	default:
		return alert{}, false
	}
	env_ := env.Tags["env"]
	if env_ == "" {
		env_ = "unknown"
	}
	sum := sha1.Sum([]byte("cpu_load\x00" + series))
	return alert{
		Rule: "cpu_load", Severity: severity, State: state, Fingerprint: fmt.Sprintf("%x", sum[:8]),
		Message: fmt.Sprintf("CPU load %g%% on %s (%s)", env.Value, env.SourceID, env.TenantID),
		Labels:  map[string]string{"env": env_, "tenant_id": env.TenantID, "source_id": env.SourceID, "metric": env.Metric},
		Value:   env.Value, At: env.TsEvent,
	}, true
}

func readCMDB(path string) (map[string]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("cmdb %s: %v", path, err)
	}
	out := map[string]map[string]string{}
	for _, r := range rows[1:] {
		row := map[string]string{}
		for i, col := range rows[0] {
			row[col] = r[i]
		}
		out[r[0]] = row
	}
	return out, nil
}
