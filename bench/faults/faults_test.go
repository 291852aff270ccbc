package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the suite's broker process too: the suite starts its
// broker as os.Args[0] broker ..., which under go test is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "broker" {
		os.Exit(brokerMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestFaultsShort is the CI version of the fault suite: 100,000 events of 50 hosts (20,000
// take under a second on 2 cores, too short for kills to land mid-backlog), the engine killed
// three times, the broker restarted mid-stream, and an oversized event in the input. Every
// topic and table must equal the clean run's: nothing lost, duplicated, differing or extra,
// and the oversized records dead-lettered.
//
// PostgreSQL comes from EVENTOPS_TEST_PG (skipped when unreachable, failed under CI=true). It
// takes about two minutes on 2 cores; -short skips it.
func TestFaultsShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite runs the engine binary; skipped with -short")
	}
	o := options{
		Events: 100_000, Hosts: 50, Seed: 17,
		Scenarios: []string{"kill9", "broker-restart", "oversized"},
		Kills:     3, BrokerDown: 2 * time.Second,
		// Compaction every 2 s, so that it runs while checkpoints are open (the engine's
		// default, 1m, would not come in a run this short).
		CleanEvery: 2 * time.Second,
		Outage:     10 * time.Second, Slowloris: 100,
		Stall: 45 * time.Second, Deadline: 3 * time.Minute, RecoveryTarget: 10 * time.Second,
		Log: t.Logf,
	}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	requirePostgres(t, o.PGDSN)
	res, err := runSuite(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, sr := range res.Scenarios {
		t.Run(sr.Name, func(t *testing.T) {
			if sr.Run.Failure != "" {
				t.Errorf("the run did not complete: %s", sr.Run.Failure)
			}
			for _, c := range sr.Comparisons {
				if c.Lost+c.Duplicated+c.Differing+c.Extra != 0 {
					t.Errorf("%s: %d lost, %d duplicated, %d differing, %d extra against the clean run (%d records, this run %d); examples:\n%v",
						c.Name, c.Lost, c.Duplicated, c.Differing, c.Extra, c.Clean, c.Run, c.Examples)
				}
			}
			for _, c := range sr.Checks {
				if !c.OK {
					t.Errorf("%s: %s", c.Name, c.Detail)
				}
			}
			for _, rec := range sr.Recoveries {
				if rec.Never {
					t.Errorf("after the %s the pipeline never made progress", rec.What)
				}
				t.Logf("%s: progress after %v (ready after %v; idle %v, never %v)", rec.What, rec.Progress, rec.Ready, rec.Idle, rec.Never)
			}
		})
	}
}

func requirePostgres(t *testing.T, dsn string) {
	t.Helper()
	conn, err := pgConnect(context.Background(), dsn)
	if err != nil {
		msg := "PostgreSQL is not reachable at " + dsn + " (" + err.Error() + "); set EVENTOPS_TEST_PG to a server where the suite may create schemas"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	conn.Close(context.Background())
}
