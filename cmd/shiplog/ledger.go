package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/shiplog/shiplog/log/server"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

func init() { addCommand(ledgerCmd) }

func ledgerCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "ledger",
		Short: "Run the ledger: the transparency log that accepts and proves releases",
		Long: `The ledger validates signed TUF metadata of registered repositories, appends one
shiplog/release/v1 entry per accepted version to a Tessera log, gathers witness
cosignatures on its checkpoints and serves C2SP tlog-tiles and tlog-proofs.
See docs/operator.md ("Ledger") and docs/spec/ledger-api.md.`,
		Example: `  shiplog ledger init -d ./ledger --origin example.com/log
  shiplog ledger serve -d ./ledger`,
	}
	c.AddCommand(ledgerInitCmd(), ledgerServeCmd())
	return c
}

func ledgerInitCmd() *cobra.Command {
	var dir, origin, keyRef string
	var asJSON bool
	var cfg server.Config
	var batchAge, cpInterval time.Duration
	c := &cobra.Command{
		Use:   "init --data-dir DIR --origin ORIGIN",
		Short: "Create a ledger's data directory, log key, config, witness policy and empty log",
		Long: `Create the data directory DIR with a new Ed25519 log key named ORIGIN (the checkpoint origin), a strict
config.json, a witness policy (witnesses.policy) naming only this log with "quorum none",
the admin token (admin.token) and an empty log. It refuses a DIR that already holds a
ledger. Add witnesses and a quorum to witnesses.policy before serving in production.
With --key, the log key is one held in a PKCS #11 token or a KMS (Ed25519, or ECDSA
P-256): log.skey then holds only the reference (see docs/operator.md, "Key custody").`,
		Example: `  shiplog ledger init -d /var/lib/shiplog-ledger --origin ledger.example.com/log
  shiplog ledger init -d ./ledger --origin example.com/test --http-listen 127.0.0.1:8480 --rate-limit 100
  shiplog ledger init -d ./ledger --origin example.com/log \
    --key 'pkcs11:token=ledger;object=log?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/shiplog/pin'
  shiplog ledger init -d /etc/shiplog-ledger --origin ledger.example.com/log --storage trillian \
    --trillian-addr 10.0.0.5:8090 --trillian-tree-id 7481203157266910224 \
    --postgres-uri 'postgresql:///shiplog?host=10.0.0.6&user=shiplog'`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			takeDir(cmd, &dir, args)
			klog.SetSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			cfg.BatchMaxAge, cfg.CheckpointInterval = server.Duration(batchAge), server.Duration(cpInterval)
			if err := server.Init(cmd.Context(), dir, server.InitOptions{Origin: origin, Config: &cfg, KeyRef: keyRef}); err != nil {
				return err
			}
			vkey, err := os.ReadFile(dir + "/" + server.VKeyFile)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"data_dir": dir, "vkey": strings.TrimSpace(string(vkey))})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ledger created in %s\nlog vkey: %s", dir, vkey)
			return nil
		},
	}
	dataDirFlag(c, &dir, "", "the ledger's data directory, new or empty (required)")
	addOutputFlags(c, &asJSON)
	c.Flags().StringVar(&origin, "origin", "", "the log's origin, also its key name (required)")
	c.Flags().StringVar(&keyRef, "key", "", "use this token or KMS key (pkcs11: or KMS URI) instead of generating a key file")
	c.Flags().StringVar(&cfg.HTTPAddr, "http-listen", "", "HTTP listen address to write in the config (default 127.0.0.1:8480)")
	c.Flags().StringVar(&cfg.GRPCAddr, "grpc-listen", "", "gRPC listen address to write in the config (default 127.0.0.1:8481)")
	alias(c.Flags(), "http-listen", "http")
	alias(c.Flags(), "grpc-listen", "grpc")
	c.Flags().Float64Var(&cfg.RateLimit, "rate-limit", 0, "requests per second per client on /v1/ and gRPC (default 50; -1 disables)")
	c.Flags().UintVar(&cfg.BatchMaxSize, "batch-max-size", 0, "entries per sequencing batch (default 256)")
	c.Flags().DurationVar(&batchAge, "batch-max-age", 0, "longest wait before a batch is sequenced (default 50ms)")
	c.Flags().DurationVar(&cpInterval, "checkpoint-interval", 0, "shortest interval between checkpoints (default and minimum 100ms)")
	c.Flags().StringVar(&cfg.Storage, "storage", "posix", `log engine: "posix" (Tessera files in DIR) or "trillian" (a Trillian tree + PostgreSQL)`)
	c.Flags().StringVar(&cfg.TrillianAddr, "trillian-addr", "", "Trillian log server gRPC address (storage trillian)")
	c.Flags().Int64Var(&cfg.TrillianTreeID, "trillian-tree-id", 0, "Trillian LOG tree id, from createtree (storage trillian)")
	c.Flags().StringVar(&cfg.PostgresURI, "postgres-uri", "", "PostgreSQL database for the index, metadata and checkpoints (storage trillian)")
	c.Flags().StringVar(&cfg.PostgresSchema, "postgres-schema", "", "PostgreSQL schema (storage trillian; default ledger_<tree id>)")
	c.MarkFlagRequired("origin")
	return c
}

func ledgerServeCmd() *cobra.Command {
	var opts server.Options
	var dir string
	var verbose bool
	var lf *logFlags
	c := &cobra.Command{
		Use:   "serve --data-dir DIR",
		Short: "Serve the ledger in DIR (HTTP and gRPC) until SIGINT or SIGTERM",
		Long: `Serve the ledger made by "shiplog ledger init". It refuses to start on a missing or
mismatched state (no config, another log's key or directory, a witness policy without
this log's key, an index or checkpoint ahead of the log). On SIGINT/SIGTERM it stops
accepting submissions, finishes those in flight and exits; nothing acknowledged is lost.

With --storage trillian the log is a Trillian tree and the index, metadata and checkpoint
state live in PostgreSQL: DIR then holds only the key, config, policy and token, and any
number of replicas may serve the same tree (one of them, elected in PostgreSQL, gathers
witness cosignatures; all accept publishes and serve reads).`,
		Example: `  shiplog ledger serve -d /var/lib/shiplog-ledger --log-format json
  shiplog ledger serve -d ./ledger --http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --addr-file ./ledger.addr
  # one of several replicas of a ledger on Trillian (deploy/trillian/README.md)
  shiplog ledger serve -d /etc/shiplog-ledger --storage trillian --trillian-addr 127.0.0.1:8090 \
    --trillian-tree-id 7481203157266910224 --postgres-uri 'postgresql:///shiplog?host=127.0.0.1&user=shiplog'`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			takeDir(cmd, &dir, args)
			if verbose {
				lf.level = "debug"
			}
			logger, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			klog.SetSlogLogger(logger.With("component", "tessera"))
			opts.Logger = logger
			n, err := server.Open(cmd.Context(), dir, opts)
			if err != nil {
				return err
			}
			return n.Serve(cmd.Context())
		},
	}
	dataDirFlag(c, &dir, "", "the ledger's data directory, made by 'shiplog ledger init' (required)")
	c.Flags().StringVar(&opts.HTTPAddr, "http-listen", "", "HTTP listen address (overrides the config)")
	c.Flags().StringVar(&opts.GRPCAddr, "grpc-listen", "", "gRPC listen address (overrides the config)")
	alias(c.Flags(), "http-listen", "http")
	alias(c.Flags(), "grpc-listen", "grpc")
	c.Flags().StringVar(&opts.AddrFile, "addr-file", "", "write the bound addresses here as JSON once listening")
	lf = addLogFlags(c, "info")
	c.Flags().BoolVar(&verbose, "verbose", false, "debug logging")
	c.Flags().MarkHidden("verbose")
	c.Flags().MarkDeprecated("verbose", "use --log-level debug (the old spelling is removed in the next release)")
	c.Flags().StringVar(&opts.Storage, "storage", "", `log engine, overriding the config: "posix" or "trillian"`)
	c.Flags().StringVar(&opts.TrillianAddr, "trillian-addr", "", "Trillian log server gRPC address (overrides the config)")
	c.Flags().Int64Var(&opts.TrillianTreeID, "trillian-tree-id", 0, "Trillian LOG tree id (overrides the config)")
	c.Flags().StringVar(&opts.PostgresURI, "postgres-uri", "", "PostgreSQL database (overrides the config)")
	c.Flags().StringVar(&opts.PostgresSchema, "postgres-schema", "", "PostgreSQL schema (overrides the config; default ledger_<tree id>)")
	return c
}
