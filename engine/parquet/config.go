package parquet

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// Config is the parquet output's settings: it writes records as rows of Parquet files under
// Dir, in Hive-style partitions (dir/tenant=acme/metric=cpu_load/date=2025-10-16/part-*.parquet).
type Config struct {
	Dir          string          `yaml:"dir" required:"true" doc:"Directory of the table's files, relative to the working directory (like broker.embedded.data_dir). Give each table its own directory, e.g. data/parquet for metrics and data/parquet-alerts for alerts, so that a glob over one does not read the other."`
	Table        string          `yaml:"table" required:"true" doc:"Table name; metrics and alerts have built-in columns, any other table needs columns:."`
	Columns      config.Fields   `yaml:"columns" doc:"Column name to expression; default for the built-in tables (entries here replace or add to them)."`
	PartitionBy  config.Fields   `yaml:"partition_by" doc:"Partition directory name to expression over the row's columns (not the record), in directory order. A timestamp value becomes its UTC date (YYYY-MM-DD). Default for metrics: {tenant: tenant, metric: metric, date: ts}; for alerts: {tenant: tenant, date: ts}; none for other tables."`
	FlushRows    int             `yaml:"flush_rows" default:"100000" doc:"Write the buffered rows to files once this many are buffered."`
	FlushBytes   config.Size     `yaml:"flush_bytes" default:"64MiB" doc:"Write the buffered rows to files once they take about this much memory."`
	FlushAge     config.Duration `yaml:"flush_age" default:"10s" doc:"Write the buffered rows to files once the oldest has waited this long. Rows are durable (in the write-ahead log) and queryable before that."`
	SortBy       []string        `yaml:"sort_by" doc:"Columns each file's rows are sorted by, so that readers skip the pages of other hosts or alerts by their min/max statistics. Default for metrics: [tenant, metric, source_id, ts]; for alerts: [tenant, fingerprint, ts]; none for other tables."`
	RowGroupRows int             `yaml:"row_group_rows" default:"131072" doc:"Maximum rows per row group: row groups are the unit readers skip by their min/max statistics."`
	Compression  string          `yaml:"compression" default:"zstd" enum:"zstd,snappy,none" doc:"Column compression codec."`
	Retention    config.Duration `yaml:"retention" default:"forever" doc:"Delete date= partitions whose date is older than this (e.g. 30d); 'forever' keeps everything."`
	Compact      *Compact        `yaml:"compact" doc:"Merging of small files within a partition."`
}

// Compact configures the background merging of a partition's small files.
type Compact struct {
	MinFiles   int             `yaml:"min_files" default:"8" doc:"Merge a partition's small files once it has at least this many; 0 turns compaction off."`
	TargetSize config.Size     `yaml:"target_size" default:"128MiB" doc:"Files at least this large are left alone; merging stops adding inputs at this size."`
	Interval   config.Duration `yaml:"interval" default:"1m" doc:"How often partitions are checked for compaction and retention."`
}

// Validate reports every problem of the Parquet output's settings.
func (c *Config) Validate() error {
	var errs []error
	if c.FlushRows < 1 {
		errs = append(errs, config.FieldErrorf("flush_rows", "must be at least 1, got %d", c.FlushRows))
	}
	if c.FlushBytes < 0 {
		errs = append(errs, config.FieldErrorf("flush_bytes", "must not be negative"))
	}
	if c.FlushAge <= 0 {
		errs = append(errs, config.FieldErrorf("flush_age", "must be positive, e.g. 10s"))
	}
	if c.RowGroupRows < 1 {
		errs = append(errs, config.FieldErrorf("row_group_rows", "must be at least 1, got %d", c.RowGroupRows))
	}
	if c.Retention == 0 || (c.Retention > 0 && c.Retention.D() < 24*time.Hour) {
		errs = append(errs, config.FieldErrorf("retention", "must be at least 1d (partitions are whole days) or forever, got %s", time.Duration(c.Retention)))
	}
	if c.Compact != nil {
		if c.Compact.MinFiles < 0 || c.Compact.MinFiles == 1 {
			errs = append(errs, config.FieldErrorf("compact.min_files", "must be 0 (off) or at least 2, got %d", c.Compact.MinFiles))
		}
		if c.Compact.Interval <= 0 {
			errs = append(errs, config.FieldErrorf("compact.interval", "must be positive, e.g. 1m"))
		}
	}
	for _, f := range c.PartitionBy {
		if f.Expr == nil {
			errs = append(errs, config.FieldErrorf("partition_by."+f.Name, "a partition needs an expression over the row's columns, e.g. tenant"))
		}
	}
	return errors.Join(errs...)
}

var (
	_ config.Validator   = (*Config)(nil)
	_ config.TableWriter = (*Config)(nil)
	_ config.Claimer     = (*Config)(nil)
)

// TableName is the table written.
func (c *Config) TableName() string { return c.Table }

// StoreKind names Parquet files in lint's messages about tables written to two kinds of
// store.
func (c *Config) StoreKind() string { return "Parquet files" }

// Claims are the table and the directory: two outputs in one directory would share (and
// corrupt) its write-ahead log, and two Parquet tables of one name would leave a route
// reading either.
func (c *Config) Claims() []config.Claim {
	var claims []config.Claim
	if c.Table != "" {
		claims = append(claims, config.Claim{Field: "table", Key: "parquet table " + c.Table,
			Taken: fmt.Sprintf("table %q is already written to Parquet files", c.Table),
			Hint:  "one table has one writer (a second stream can write its topic, which one sink stores)"})
	}
	if c.Dir != "" {
		claims = append(claims, config.Claim{Field: "dir", Key: "parquet dir " + filepath.Clean(c.Dir),
			Taken: fmt.Sprintf("directory %q is already used", c.Dir),
			Hint:  "give each Parquet table its own directory"})
	}
	return claims
}
