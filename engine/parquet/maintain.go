package parquet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/tables"
)

// compact is the compaction config with defaults for an absent compact: block.
func (o *Output) compact() Compact {
	c := Compact{MinFiles: 8, TargetSize: 128 << 20, Interval: config.Duration(time.Minute)}
	if o.cfg.Compact != nil {
		c = *o.cfg.Compact
	}
	if c.Interval <= 0 {
		c.Interval = config.Duration(time.Minute)
	}
	return c
}

// Maintain applies retention (removes date= partitions older than retention) and merges
// the small files of each partition. The background goroutine calls it every
// compact.interval; tests call it directly.
func (o *Output) Maintain() error {
	o.mu.Lock()
	o.lastMain = o.opts.Clock.Now()
	o.mu.Unlock()
	errs := []error{o.applyRetention()}
	if c := o.compact(); c.MinFiles >= 2 {
		errs = append(errs, o.compactAll(c))
	}
	return errors.Join(errs...)
}

// applyRetention removes every date=YYYY-MM-DD directory whose whole day is older than the
// retention limit.
func (o *Output) applyRetention() error {
	if o.cfg.Retention <= 0 {
		return nil
	}
	cutoff := o.opts.Clock.Now().Add(-o.cfg.Retention.D())
	return filepath.WalkDir(o.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || d.Name() == walDirName {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		v, ok := strings.CutPrefix(d.Name(), "date=")
		if !ok {
			return nil
		}
		day, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return filepath.SkipDir
		}
		if !day.Add(24 * time.Hour).After(cutoff) {
			if err := o.removeLocked(func() error { return os.RemoveAll(path) }); err != nil {
				return fmt.Errorf("retention: remove %s: %w", path, err)
			}
		}
		return filepath.SkipDir
	})
}

// compactAll merges, in every partition directory, the files smaller than the target size
// once there are at least MinFiles of them.
func (o *Output) compactAll(c Compact) error {
	byDir := map[string][]os.DirEntry{}
	err := filepath.WalkDir(o.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == walDirName {
			return filepath.SkipDir
		}
		if _, ok := fileGen(d.Name()); ok && !d.IsDir() {
			byDir[filepath.Dir(path)] = append(byDir[filepath.Dir(path)], d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("compaction: %w", err)
	}
	var errs []error
	for dir, ents := range byDir {
		errs = append(errs, o.compactDir(dir, ents, c))
	}
	return errors.Join(errs...)
}

// compactDir merges one partition's small files: the merged file is written aside and
// renamed into place (its metadata names its inputs), then the inputs are deleted. A crash
// between the rename and the deletes leaves inputs a reader must ignore (Live does) and the
// next run deletes.
func (o *Output) compactDir(dir string, ents []os.DirEntry, c Compact) error {
	live, err := Live(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !slices.Contains(live, e.Name()) {
			if err := o.removeLocked(func() error { return os.Remove(filepath.Join(dir, e.Name())) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("compaction: remove superseded %s: %w", e.Name(), err)
			}
		}
	}
	var inputs []string
	var size int64
	var gen int64
	for _, name := range live {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("compaction: %w", err)
		}
		if info.Size() >= int64(c.TargetSize) || size+info.Size() > int64(c.TargetSize) {
			continue
		}
		inputs = append(inputs, name)
		size += info.Size()
		g, _ := fileGen(name)
		gen = max(gen, g)
	}
	if len(inputs) < c.MinFiles {
		return nil
	}
	var rows []Row
	for _, name := range inputs {
		rs, err := o.readFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("compaction: %w", err)
		}
		rows = append(rows, rs...)
	}
	from, _ := json.Marshal(inputs)
	rel, _ := filepath.Rel(o.dir, dir)
	name := fmt.Sprintf("part-%012d-c%d.parquet", gen, o.opts.Clock.Now().UnixNano())
	if err := o.writeFile(filepath.ToSlash(rel), name, rows,
		pq.KeyValueMetadata(MetaGeneration, strconv.FormatInt(gen, 10)),
		pq.KeyValueMetadata(MetaCompactedFrom, string(from))); err != nil {
		return fmt.Errorf("compaction: %w", err)
	}
	err = o.removeLocked(func() error {
		for _, in := range inputs {
			if err := os.Remove(filepath.Join(dir, in)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("compaction: remove input %s: %w", in, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// removeLocked deletes files under the output's lock, which a query holds while it lists and
// opens the files it reads: a query never lists a file that is gone before it opens it.
// (Files written aside and renamed in need no lock: Live sorts out a compacted file seen
// next to its inputs.)
func (o *Output) removeLocked(remove func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return remove()
}

// readFile reads a file of this table back as rows in Columns order.
func (o *Output) readFile(path string) ([]Row, error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if pf.Schema().String() != o.schema.String() {
		return nil, fmt.Errorf("%s has other columns than the table now has; left as it is", path)
	}
	r := pq.NewReader(pf)
	defer r.Close()
	out := make([]Row, 0, pf.NumRows())
	buf := make([]pq.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		for _, pr := range buf[:n] {
			vals := make([]any, len(o.cols))
			for i, c := range o.cols {
				v := pr[o.order[i]]
				if v.IsNull() {
					continue
				}
				switch c.Type {
				case tables.Double:
					vals[i] = v.Double()
				case tables.Time:
					vals[i] = time.UnixMicro(v.Int64()).UTC()
				default:
					vals[i] = string(v.ByteArray())
				}
			}
			out = append(out, Row{Values: vals})
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// Live lists the Parquet files of one partition directory a reader should read: every
// part-*.parquet except those a compacted file present in the directory lists as its
// inputs (a crash between a compaction's rename and its deletes leaves both).
func Live(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	superseded := map[string]bool{}
	for _, e := range ents {
		if _, ok := fileGen(e.Name()); !ok || e.IsDir() {
			continue
		}
		names = append(names, e.Name())
		if !strings.Contains(e.Name(), "-c") {
			continue
		}
		from, err := compactedFrom(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for _, n := range from {
			superseded[n] = true
		}
	}
	return slices.DeleteFunc(names, func(n string) bool { return superseded[n] }), nil
}

func compactedFrom(path string) ([]string, error) {
	f, pf, err := openParquet(path, pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, ok := pf.Lookup(MetaCompactedFrom)
	if !ok {
		return nil, nil
	}
	var from []string
	if err := json.Unmarshal([]byte(v), &from); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, MetaCompactedFrom, err)
	}
	return from, nil
}

// openParquet opens the Parquet file at path; the caller closes the returned *os.File.
func openParquet(path string, opts ...pq.FileOption) (*os.File, *pq.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	pf, err := pq.OpenFile(f, info.Size(), opts...)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, pf, nil
}
