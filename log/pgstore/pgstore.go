// Package pgstore keeps in PostgreSQL what the ledger keeps beside its
// log, so that ledger replicas in front of one Trillian tree hold no state
// of their own:
//
//   - Index: the repository index (registered repositories, the latest
//     logged version of each role, leaf and metadata hashes to indexes, and
//     the watermark below which every entry is recorded);
//   - MetadataStore: the exact metadata bytes each entry commits to,
//     content-addressed by SHA-256;
//   - CheckpointState: every checkpoint the ledger signed and every one its
//     witnesses cosigned, keyed by tree size (insert-if-absent, compare on
//     conflict: one size, one checkpoint);
//   - Coordinator: per-repository locks across replicas (session advisory
//     locks), the entry each repository is appending (so a replica that dies
//     between Trillian and the index cannot let another accept a
//     conflicting version), and the election of the one replica that runs
//     the publisher (pg_try_advisory_lock on a dedicated connection: it
//     fails over when the leader's session ends);
//   - TileCache: full hash tiles and entry bundles for log/trillian.
//
// Everything lives in one PostgreSQL schema (Options.Schema), created on
// first use, so several ledgers can share a database. Every write commits
// before the call returns (PostgreSQL's synchronous commit), and every
// error wraps log.ErrUnavailable: the ledger answers 503 while the
// database is down and resumes when it returns. All types are safe for
// concurrent use.
package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	ledger "github.com/shiplog/shiplog/log"
)

// Defaults of Options.
const (
	DefaultSchema   = "shiplog"
	DefaultMaxConns = 32
	// DefaultMaxLockConns bounds the connections holding repository locks.
	DefaultMaxLockConns = 64
	DefaultTimeout      = 10 * time.Second
)

// Options configures Open.
type Options struct {
	// URI is a PostgreSQL connection string (URL or key=value form).
	URI string
	// Schema names the PostgreSQL schema of this ledger: lowercase letters,
	// digits and underscores, at most 63 (default "shiplog").
	Schema string
	// MaxConns bounds the connection pool for queries (default 32).
	MaxConns int32
	// MaxLockConns bounds a second pool, of connections that hold
	// repository locks: each repository being appended to holds one while
	// its submission is checked and its entry queued in the log, not
	// while the log sequences it (default 64). Kept apart so that lock
	// holders never starve the queries they wait for. PostgreSQL's
	// max_connections must allow MaxConns + MaxLockConns + 1 per replica.
	MaxLockConns int32
	// Timeout bounds each database operation (default 10 s).
	Timeout time.Duration
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
	// Registerer receives the store's metrics (round trips to PostgreSQL
	// by kind, shiplog_postgres_round_trips_total); nil registers none.
	Registerer prometheus.Registerer
}

// Store is a connection pool to the ledger's schema.
type Store struct {
	pool    *pgxpool.Pool
	locks   *pgxpool.Pool
	uri     string
	schema  string
	timeout time.Duration
	log     *slog.Logger
	rec     recorder
	w       writer

	lastLog atomic.Int64 // unix nanos of the last logged database error

	leadMu      sync.Mutex // guards the leader fields
	leadConn    *pgx.Conn
	leading     bool
	leadChecked time.Time
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to PostgreSQL and creates the schema and its tables if
// they are missing.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if !schemaName.MatchString(opts.Schema) {
		return nil, fmt.Errorf("postgres schema %q: want lowercase letters, digits and underscores", opts.Schema)
	}
	cfg, err := pgxpool.ParseConfig(opts.URI)
	if err != nil {
		return nil, fmt.Errorf("postgres uri: %w", err)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.HealthCheckPeriod = 5 * time.Second
	rt, err := newRoundTrips(opts.Registerer)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.Tracer = rt
	s := &Store{uri: opts.URI, schema: opts.Schema, timeout: opts.Timeout, log: opts.Logger}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.rec.s = s
	s.w.s = s
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("couldn't connect to postgres: %w", err)
	}
	lcfg := cfg.Copy()
	lcfg.MaxConns = opts.MaxLockConns
	if lcfg.MaxConns == 0 {
		lcfg.MaxConns = DefaultMaxLockConns
	}
	if s.locks, err = pgxpool.NewWithConfig(ctx, lcfg); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("couldn't connect to postgres: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		s.locks.Close()
		return nil, err
	}
	return s, nil
}

// schemaSQL creates the tables; every statement is re-runnable.
const schemaSQL = `
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.metadata (sha256 bytea PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.repos (repo text PRIMARY KEY, idx bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.roles (repo text NOT NULL, role text NOT NULL, version bigint NOT NULL,
	sha256 bytea NOT NULL, idx bigint NOT NULL, PRIMARY KEY (repo, role));
CREATE TABLE IF NOT EXISTS {s}.leaves (leaf bytea PRIMARY KEY, idx bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.hashes (sha256 bytea PRIMARY KEY, idx bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.watermark (id int PRIMARY KEY CHECK (id = 1), n bigint NOT NULL);
INSERT INTO {s}.watermark VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.pending (idx bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS {s}.checkpoints (kind text NOT NULL, size bigint NOT NULL, note bytea NOT NULL,
	created timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (kind, size));
CREATE TABLE IF NOT EXISTS {s}.appending (repo text PRIMARY KEY, entry bytea NOT NULL,
	created timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.tiles (level int NOT NULL, idx bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (level, idx));
CREATE TABLE IF NOT EXISTS {s}.bundles (idx bigint PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.attestations (repo text NOT NULL, subject bytea NOT NULL, idx bigint NOT NULL,
	key bytea NOT NULL, sha256 bytea NOT NULL, length bigint NOT NULL, verdict text NOT NULL, PRIMARY KEY (repo, subject, idx));
`

// migrate creates the schema under a transaction-scoped advisory lock, so
// replicas starting together do not race on CREATE.
func (s *Store) migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.lockKey("migrate", "")); err != nil {
			return fmt.Errorf("couldn't lock the postgres schema: %w", err)
		}
		if _, err := tx.Exec(ctx, s.q(schemaSQL)); err != nil {
			return fmt.Errorf("couldn't create the postgres schema %s: %w", s.schema, err)
		}
		return nil
	})
}

// q substitutes the schema name into a statement.
func (s *Store) q(sql string) string { return strings.ReplaceAll(sql, "{s}", s.schema) }

// ctx bounds one operation.
func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// lockKey is the advisory lock key of (kind, name) in this schema.
func (s *Store) lockKey(kind, name string) int64 {
	h := sha256.Sum256([]byte(s.schema + "\x00" + kind + "\x00" + name))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// unavailable logs a database error (at most once a second) and returns
// a retryable error for clients that does not describe the database.
func (s *Store) unavailable(action string, err error) error {
	now := time.Now().UnixNano()
	if last := s.lastLog.Load(); now-last > int64(time.Second) && s.lastLog.CompareAndSwap(last, now) {
		s.log.Warn("postgres unavailable", "action", action, "err", err)
	}
	return fmt.Errorf("couldn't %s: database unavailable: %w", action, ledger.ErrUnavailable)
}

// Close releases the leadership and the pool.
func (s *Store) Close() {
	s.leadMu.Lock()
	if s.leadConn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.leadConn.Close(ctx)
		cancel()
		s.leadConn, s.leading = nil, false
	}
	s.leadMu.Unlock()
	s.pool.Close()
	s.locks.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return s.unavailable("reach postgres", err)
	}
	return nil
}

var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
