package parquet

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/store/storetest"
)

// The local store answers the API's routes as every store must (engine/store/storetest):
// the same rows, values and order as PostgreSQL, flushed or not, after redeliveries and a
// crash, and while batches are written and flushed.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return openBackend(t, t.TempDir(), nil)
	})
}

// openBackend opens outputs for both built-in tables under dir and a store on them. A flush
// also compacts (from 2 files), so the suite reads compacted partitions too. A restart
// abandons the outputs without flushing (a crash) and opens new ones on the same
// directories.
func openBackend(t *testing.T, dir string, tune func(*Config)) storetest.Backend {
	clock := &fakeClock{now: time.Date(2025, 10, 16, 12, 0, 0, 0, time.UTC)}
	var outs []*Output
	for _, table := range []string{"metrics", "alerts"} {
		cfg := &Config{Dir: filepath.Join(dir, table), Table: table, FlushRows: 1 << 20,
			FlushAge: config.Duration(time.Hour), RowGroupRows: 131072, Compression: "zstd", Retention: config.Forever,
			Compact: &Compact{MinFiles: 2, TargetSize: 1 << 30, Interval: config.Duration(time.Minute)}}
		if tune != nil {
			tune(cfg)
		}
		outs = append(outs, open(t, cfg, clock))
	}
	st, err := NewStore(outs...)
	if err != nil {
		t.Fatal(err)
	}
	crashed := false
	t.Cleanup(func() {
		st.Close()
		if !crashed {
			for _, o := range outs {
				o.Close()
			}
		}
	})
	return storetest.Backend{
		Metrics: outs[0],
		Alerts:  outs[1],
		Store:   st,
		Flush: func(context.Context) error {
			for _, o := range outs {
				if err := o.Flush(); err != nil {
					return err
				}
				if err := o.Maintain(); err != nil {
					return err
				}
			}
			return nil
		},
		Reopen: func(t *testing.T) storetest.Backend {
			crashed = true
			for _, o := range outs {
				o.wal.close() // the process died: no Close, no flush
			}
			return openBackend(t, dir, tune)
		},
		ErrBadQuery: store.ErrBadQuery,
	}
}
