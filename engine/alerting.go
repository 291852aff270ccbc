package engine

import "time"

// AlertDispatcher is a processor that dispatches alerts to receivers itself (the notify
// processor). The API serves its silences and alerts as Alertmanager's v2 API does, so that
// amtool and other Alertmanager clients work against the engine. Its methods are safe to
// call while the stream runs; a silence takes effect at the processor's next batch or tick,
// and is checkpointed with its state.
type AlertDispatcher interface {
	// Silences returns every silence, expired ones included (until they are dropped).
	Silences() []Silence
	// PutSilence creates a silence with a new ID (s.ID empty), or puts it under s.ID,
	// replacing the silence with that ID if there is one, and returns its ID; an error says
	// why s is refused. (The API, which serves every dispatcher, refuses an update of an ID
	// none of them has, as Alertmanager does.)
	PutSilence(s Silence) (string, error)
	// ExpireSilence ends a silence now; ErrUnknownSilence if there is none with id.
	ExpireSilence(id string) error
	// DispatchedAlerts returns the alerts the dispatcher holds, with what mutes them.
	DispatchedAlerts() []DispatchedAlert
}

// ErrUnknownSilence is ExpireSilence's error for an ID no silence has.
var ErrUnknownSilence = unknownSilence{}

type unknownSilence struct{}

func (unknownSilence) Error() string { return "no silence with this ID" }

// SilenceMatcher is one matcher of a silence, as Alertmanager's API writes it.
type SilenceMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Silence mutes the alerts its matchers select from StartsAt until EndsAt.
type Silence struct {
	ID        string           `json:"id"`
	Matchers  []SilenceMatcher `json:"matchers"`
	StartsAt  time.Time        `json:"startsAt"`
	EndsAt    time.Time        `json:"endsAt"`
	UpdatedAt time.Time        `json:"updatedAt"`
	CreatedBy string           `json:"createdBy"`
	Comment   string           `json:"comment"`
}

// DispatchedAlert is an alert a dispatcher holds, as Alertmanager's API shows it.
type DispatchedAlert struct {
	Fingerprint string // of its labels, as Alertmanager's
	// SourceFingerprint is the alert record's own fingerprint: the one the alerts table and
	// the alert topic key it by.
	SourceFingerprint string
	Labels            map[string]string
	Annotations       map[string]string
	StartsAt          time.Time
	EndsAt            time.Time // zero while it fires
	UpdatedAt         time.Time
	GeneratorURL      string
	Receivers         []string
	SilencedBy        []string // IDs of the silences muting it
	InhibitedBy       []string // fingerprints of the alerts inhibiting it
}

// PartitionBound is a processor whose results depend on seeing together records that may
// come through different input partitions (its state is kept per partition): the notify
// processor groups alerts only within a partition. The runtime warns when its stream's input
// topic has more than one partition.
type PartitionBound interface {
	// OnePartitionReason says what goes wrong with several partitions.
	OnePartitionReason() string
}
