package notify

import (
	"fmt"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// useIncidents finds inhibit_symptoms' lookup table: one whose rows (incident records) can
// be walked.
func (p *Processor) useIncidents(env engine.BuildEnv) error {
	if p.cfg.InhibitSymptoms == "" || env.Lookups == nil {
		return nil // none, or lint without lookups loaded: the loader checks the name
	}
	table, ok := env.Lookups.Lookup(p.cfg.InhibitSymptoms)
	if !ok {
		return config.FieldErrorf("inhibit_symptoms", "no lookup table %q", p.cfg.InhibitSymptoms)
	}
	it, ok := table.(engine.IterableLookup)
	if !ok {
		return config.FieldErrorf("inhibit_symptoms", "lookup %q cannot be read whole", p.cfg.InhibitSymptoms)
	}
	p.incidents = it
	return nil
}

// syncSymptoms gives the dispatcher the symptoms of the incidents open now.
func (p *Processor) syncSymptoms() {
	if p.incidents != nil {
		p.d.Symptoms = symptomsOf(p.incidents)
	}
}

// symptomsOf maps the fingerprint of each symptom of an open incident to the incident's id:
// a firing member on a node other than the root cause, in an incident of more than one
// alert. Rows are incident records as correlate writes them (the latest of each incident).
func symptomsOf(incidents engine.IterableLookup) map[string]string {
	out := map[string]string{}
	incidents.Each(func(_ string, row map[string]any) {
		members, _ := row["members"].([]any)
		if row["state"] != "open" || len(members) < 2 {
			return
		}
		id, cause := fmt.Sprint(row["incident_id"]), row["root_cause"]
		for _, m := range members {
			mv, _ := m.(map[string]any)
			if fp, ok := mv["fingerprint"].(string); ok && mv["state"] == "firing" && mv["node"] != cause {
				out[fp] = id
			}
		}
	})
	return out
}
