package pgstore

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// roundTrips counts what the store sends to PostgreSQL, one increment per
// round trip: a statement (by kind: select, insert, update, delete,
// begin, commit, rollback, lock for advisory locks, other) or a pipelined
// batch of statements ("batch", however many it holds). It is a pgx
// QueryTracer and BatchTracer on every connection of the store's pools.
type roundTrips struct{ c *prometheus.CounterVec }

func newRoundTrips(r prometheus.Registerer) (*roundTrips, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shiplog_postgres_round_trips_total",
		Help: "Statements and pipelined batches sent to PostgreSQL (each one round trip), by kind.",
	}, []string{"kind"})
	if r != nil {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return &roundTrips{c}, nil
}

// statementKind names a statement by its first keyword.
func statementKind(sql string) string {
	if strings.Contains(sql, "pg_advisory") || strings.Contains(sql, "pg_try_advisory") {
		return "lock"
	}
	sql = strings.TrimSpace(sql)
	word, _, _ := strings.Cut(sql, " ")
	switch w := strings.ToLower(word); w {
	case "select", "insert", "update", "delete", "begin", "commit", "rollback":
		return w
	}
	return "other"
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.c.WithLabelValues(statementKind(d.SQL)).Inc()
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.c.WithLabelValues("batch").Inc()
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
