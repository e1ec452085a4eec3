package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/google/trillian"
	"github.com/prometheus/client_golang/prometheus"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/pgstore"
	tstore "github.com/shiplog/shiplog/log/trillian"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	gbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// StorageTrillian is config.storage for a ledger on a Trillian tree.
const StorageTrillian = "trillian"

// override applies the storage options given on the command line.
func (o Options) override(cfg *Config) {
	if o.Storage != "" {
		cfg.Storage = o.Storage
	}
	if o.TrillianAddr != "" {
		cfg.TrillianAddr = o.TrillianAddr
	}
	if o.TrillianTreeID != 0 {
		cfg.TrillianTreeID = o.TrillianTreeID
	}
	if o.PostgresURI != "" {
		cfg.PostgresURI = o.PostgresURI
	}
	if o.PostgresSchema != "" {
		cfg.PostgresSchema = o.PostgresSchema
	}
}

// openTrillian opens a ledger backend on a Trillian tree: the log in
// Trillian (reached over plaintext gRPC: keep it on a private network),
// and the index, metadata, checkpoint state, replica coordination and
// tile cache in PostgreSQL, so the ledger process holds no state and
// several replicas can serve the same tree.
func openTrillian(ctx context.Context, cfg *Config, signer note.Signer, logger *slog.Logger, reg prometheus.Registerer) (*backend, error) {
	if cfg.TrillianAddr == "" || cfg.TrillianTreeID <= 0 || cfg.PostgresURI == "" {
		return nil, errors.New("storage \"trillian\" needs trillian_addr, trillian_tree_id and postgres_uri (or --trillian-addr, --trillian-tree-id, --postgres-uri)")
	}
	schema := cfg.PostgresSchema
	if schema == "" {
		schema = fmt.Sprintf("ledger_%d", cfg.TrillianTreeID)
	}
	db, err := pgstore.Open(ctx, pgstore.Options{URI: cfg.PostgresURI, Schema: schema, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	// Reconnect within a second of Trillian's return (gRPC's default
	// backoff grows to two minutes).
	backoff := grpc.ConnectParams{Backoff: gbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}}
	rpcs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shiplog_trillian_rpcs_total",
		Help: "Calls to Trillian's log server, by method.",
	}, []string{"method"})
	if err := reg.Register(rpcs); err != nil {
		db.Close()
		return nil, err
	}
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		rpcs.WithLabelValues(path.Base(method)).Inc()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	conn, err := grpc.NewClient(cfg.TrillianAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithConnectParams(backoff),
		grpc.WithUnaryInterceptor(count))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("trillian_addr: %w", err)
	}
	store, err := tstore.New(ctx, tstore.Options{
		Client: trillian.NewTrillianLogClient(conn), TreeID: cfg.TrillianTreeID, Signer: signer,
		Cache: db.TileCache(), Logger: logger,
	})
	if err != nil {
		conn.Close()
		db.Close()
		return nil, err
	}
	return &backend{
		store: store, index: db.Index(), meta: db.MetadataStore(), state: db.CheckpointState(), coord: db.Coordinator(),
		close: func() { conn.Close(); db.Close() },
	}, nil
}

var _ ledger.Storage = (*tstore.Storage)(nil)
