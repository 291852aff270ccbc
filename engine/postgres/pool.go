package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pools holds one connection pool per DSN for the whole process: every output and store that
// names the same database shares its connections, so the connection count stays bounded by
// the pool size rather than growing with the number of sinks and routes.
var pools = struct {
	sync.Mutex
	m map[string]*pgxpool.Pool
	// users counts the pipelines running (Retain/Release): pools are closed when the last
	// one stops, not when any one does (a reload runs two at once, and tests run several).
	users int
}{m: map[string]*pgxpool.Pool{}}

// Retain says a pipeline that uses pools is running; call Release when it has stopped.
func Retain() {
	pools.Lock()
	pools.users++
	pools.Unlock()
}

// Release says a pipeline stopped; the last one to stop closes every pool.
func Release() {
	pools.Lock()
	pools.users--
	last := pools.users <= 0
	pools.Unlock()
	if last {
		CloseAll()
	}
}

// Pool returns the process-wide pool for dsn, connecting (and checking the connection) the
// first time a DSN is seen. A DSN that cannot be reached is not remembered, so a later call
// tries again.
func Pool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pools.Lock()
	defer pools.Unlock()
	if p, ok := pools.m[dsn]; ok {
		return p, nil
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included; say only that it is malformed.
		return nil, fmt.Errorf("postgres: invalid DSN: %w", redactedError{err})
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", describe(cfg.ConnConfig), err)
	}
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", describe(cfg.ConnConfig), err)
	}
	pools.m[dsn] = p
	return p, nil
}

// ClosePool closes the pool for dsn, if one is open. Outputs and stores using it stop working;
// it is for tests and for reloads that drop a database.
func ClosePool(dsn string) {
	pools.Lock()
	p, ok := pools.m[dsn]
	delete(pools.m, dsn)
	pools.Unlock()
	if ok {
		p.Close()
	}
}

// CloseAll closes every pool. The engine calls it once at shutdown, after outputs are closed.
func CloseAll() {
	pools.Lock()
	all := pools.m
	pools.m = map[string]*pgxpool.Pool{}
	pools.Unlock()
	for _, p := range all {
		p.Close()
	}
}

// describe names a database for messages without its password.
func describe(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// redactedError hides the text of a DSN parse error (which can contain the password) while
// keeping it reachable with errors.As/Unwrap for callers that need the detail.
type redactedError struct{ err error }

func (e redactedError) Error() string { return "cannot parse the connection string" }
func (e redactedError) Unwrap() error { return e.err }
