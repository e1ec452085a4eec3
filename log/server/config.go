// Package server runs the shiplog ledger as a service (shiplog ledger
// serve): it owns the data directory (Init), opens and checks its state, and
// serves the HTTP API of docs/spec/ledger-api.md (C2SP tlog-tiles read API,
// publish, proofs, admin, health, metrics) and the gRPC API of
// proto/ledger/v1 on top of a log.Ledger.
//
// The data directory holds:
//
//	config.json        strict configuration (unknown fields refused)
//	log.skey, log.vkey the log's note key (skey mode 0600): an Ed25519 skey, or a
//	                   KEYREF line naming a key in a PKCS #11 token or a KMS
//	witnesses.policy   C2SP tlog-policy: this log's key, the witnesses, the quorum
//	admin.token        the bearer token of the admin API (mode 0600)
//	log/               Tessera's POSIX log (tiles, entry bundles, private state)
//	metadata/          content-addressed metadata files
//	index.db           the repository index (bbolt; rebuilt from the log if removed)
//	checkpoint.signed, checkpoint.cosigned   the last checkpoint sent to and cosigned by the witnesses
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/internal/keyref"
	"github.com/shiplog/shiplog/log/tessera"
)

// Names of the files in the data directory.
const (
	ConfigFile  = "config.json"
	SKeyFile    = "log.skey"
	VKeyFile    = "log.vkey"
	PolicyFile  = "witnesses.policy"
	TokenFile   = "admin.token"
	LogDir      = "log"
	MetadataDir = "metadata"
	IndexFile   = "index.db"
	maxConfig   = 64 << 10
)

// Duration is a time.Duration written as a Go duration string ("50ms").
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"50ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// Config is config.json. Zero values mean the defaults below.
type Config struct {
	// Origin is the log's origin and the name of its key.
	Origin string `json:"origin"`
	// Storage is the log engine: "posix" (Tessera on POSIX files) or
	// "trillian" (a Trillian tree; index, metadata and checkpoints in
	// PostgreSQL, so several replicas can serve one log).
	Storage string `json:"storage"`
	// TrillianAddr is the Trillian log server's gRPC address and
	// TrillianTreeID the LOG tree (storage "trillian").
	TrillianAddr   string `json:"trillian_addr,omitempty"`
	TrillianTreeID int64  `json:"trillian_tree_id,omitempty"`
	// PostgresURI is the PostgreSQL database of the index, metadata and
	// checkpoint state (storage "trillian"); PostgresSchema its schema
	// (default "ledger_<tree id>").
	PostgresURI    string `json:"postgres_uri,omitempty"`
	PostgresSchema string `json:"postgres_schema,omitempty"`
	// HTTPAddr and GRPCAddr are the listen addresses (default
	// 127.0.0.1:8480 and 127.0.0.1:8481; flags override them).
	HTTPAddr string `json:"http_addr,omitempty"`
	GRPCAddr string `json:"grpc_addr,omitempty"`
	// BatchMaxSize, BatchMaxAge and CheckpointInterval tune Tessera
	// (defaults 256, 50ms, 100ms; the interval's minimum is 100ms).
	BatchMaxSize       uint     `json:"batch_max_size,omitempty"`
	BatchMaxAge        Duration `json:"batch_max_age,omitempty"`
	CheckpointInterval Duration `json:"checkpoint_interval,omitempty"`
	// WitnessTimeout bounds one request to a witness (default 5s);
	// CosignTimeout one round of gathering cosignatures (default 10s).
	WitnessTimeout Duration `json:"witness_timeout,omitempty"`
	CosignTimeout  Duration `json:"cosign_timeout,omitempty"`
	// RateLimit is the sustained requests per second allowed to one client
	// address on the /v1/ API and gRPC (default 50; negative disables);
	// RateBurst the burst (default 2×RateLimit).
	RateLimit float64 `json:"rate_limit,omitempty"`
	RateBurst int     `json:"rate_burst,omitempty"`
	// MaxConnections and MaxConnectionsPerClient bound the open
	// connections on each listener, in all and per client address
	// (defaults 4096 and 64): more are closed as soon as accepted.
	// MaxStreamsPerConnection bounds concurrent gRPC streams on one
	// connection (default 16). MaxBytesInFlight bounds request bytes being
	// received, in all (default 256 MiB) and per client address (a quarter
	// of it); an HTTP request counts its Content-Length, a gRPC call the
	// largest message (MaxBody + 4 KiB), taken before the body is read.
	MaxConnections          int   `json:"max_connections,omitempty"`
	MaxConnectionsPerClient int   `json:"max_connections_per_client,omitempty"`
	MaxStreamsPerConnection int   `json:"max_streams_per_connection,omitempty"`
	MaxBytesInFlight        int64 `json:"max_bytes_in_flight,omitempty"`
	// ChallengeCAFile (PEM; relative to the ledger directory) replaces the
	// system's CA certificates for registration challenges (package
	// log/challenge); ChallengeAllowedNets lists address ranges (CIDR) a
	// challenge fetch may connect to although they are not global
	// (private networks, tests); ChallengeHosts maps a host name to the
	// "host:port" to fetch its challenges from instead of resolving it on
	// port 443. All empty by default: public CAs, global addresses only.
	ChallengeCAFile      string            `json:"challenge_ca_file,omitempty"`
	ChallengeAllowedNets []string          `json:"challenge_allowed_nets,omitempty"`
	ChallengeHosts       map[string]string `json:"challenge_hosts,omitempty"`
}

const (
	defaultHTTPAddr = "127.0.0.1:8480"
	defaultGRPCAddr = "127.0.0.1:8481"
)

// LoadConfig reads dir/config.json strictly: unknown fields, trailing data
// and a missing origin fail.
func LoadConfig(dir string) (*Config, error) {
	b, err := readLimited(filepath.Join(dir, ConfigFile), maxConfig)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no ledger in %s (run shiplog ledger init): %w", dir, err)
	}
	if err != nil {
		return nil, err
	}
	return ParseConfig(b)
}

// ParseConfig parses config.json strictly: unknown fields, trailing data,
// a missing origin and an unknown storage fail.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > maxConfig {
		return nil, fmt.Errorf("%s: larger than %d bytes", ConfigFile, maxConfig)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data", ConfigFile)
	}
	if c.Origin == "" {
		return nil, fmt.Errorf("%s: origin is required", ConfigFile)
	}
	if c.Storage != "posix" && c.Storage != StorageTrillian {
		return nil, fmt.Errorf("%s: storage %q is not supported (want \"posix\" or \"trillian\")", ConfigFile, c.Storage)
	}
	for _, n := range c.ChallengeAllowedNets {
		if _, err := netip.ParsePrefix(n); err != nil {
			return nil, fmt.Errorf("%s: challenge_allowed_nets: %w", ConfigFile, err)
		}
	}
	if len(c.ChallengeAllowedNets) == 0 {
		c.ChallengeAllowedNets = nil // as re-encoded (omitempty)
	}
	if len(c.ChallengeHosts) == 0 {
		c.ChallengeHosts = nil
	}
	if c.MaxBytesInFlight != 0 && c.MaxBytesInFlight < 4*maxGRPCMessage {
		return nil, fmt.Errorf("%s: max_bytes_in_flight must be at least %d (four of the largest requests: a client may hold a quarter)", ConfigFile, 4*maxGRPCMessage)
	}
	return &c, nil
}

// InitOptions configures Init.
type InitOptions struct {
	// Origin names the log and its key (for example "example.com/ledger").
	Origin string
	// Config, if not nil, is written as config.json (Init sets its Origin;
	// an empty Storage means "posix"; with "trillian", no log is created:
	// the tree is made with Trillian's createtree).
	Config *Config
	// KeyRef, if set, names a log key held in a PKCS #11 token or a KMS
	// (internal/keyref: Ed25519, or ECDSA P-256 whose checkpoints carry
	// c2sp.org/signed-note type 0x02 signatures) instead of a new key:
	// log.skey then holds the reference, never a secret.
	KeyRef string
}

// Init creates a new ledger in dir: the directory, the log key, config.json,
// a witness policy naming only this log ("quorum none"; add witnesses and a
// quorum before serving in production), the admin token and the empty log.
// It refuses a directory that already holds a ledger.
func Init(ctx context.Context, dir string, opts InitOptions) error {
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil {
		return fmt.Errorf("%s already holds a ledger", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	skey, vkey, err := notekey.GenerateLog(rand.Reader, opts.Origin)
	if opts.KeyRef != "" {
		skey = keyref.FormatNoteKeyRef(opts.Origin, opts.KeyRef)
		_, vkey, err = keyref.OpenLogSigner(ctx, skey)
	}
	if err != nil {
		return err
	}
	skey = strings.TrimSpace(skey)
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	cfg := Config{}
	if opts.Config != nil {
		cfg = *opts.Config
	}
	cfg.Origin = opts.Origin
	if cfg.Storage == "" {
		cfg.Storage = "posix"
	}
	if cfg.Storage != "posix" && cfg.Storage != StorageTrillian {
		return fmt.Errorf("storage %q is not supported (want \"posix\" or \"trillian\")", cfg.Storage)
	}
	cb, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	policy := fmt.Sprintf("# Witness policy of this ledger (C2SP tlog-policy). The log line is this\n"+
		"# ledger's own key. Add witness lines with their URLs and a quorum, e.g.\n"+
		"#   witness w1 <cosignature vkey> https://w1.example/\n"+
		"#   group q 2 w1 w2 w3\n#   quorum q\nlog %s\nquorum none\n", vkey)
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{SKeyFile, []byte(skey + "\n"), 0o600},
		{VKeyFile, []byte(vkey + "\n"), 0o644},
		{TokenFile, []byte(hex.EncodeToString(token) + "\n"), 0o600},
		{PolicyFile, []byte(policy), 0o644},
	}
	for _, f := range files {
		if err := durable.CreateFile(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("couldn't create %s: %w", f.name, err)
		}
	}
	signer, _, err := keyref.OpenLogSigner(ctx, skey)
	if err != nil {
		return err
	}
	if cfg.Storage == "posix" { // a Trillian tree is made with createtree
		if err := tessera.Create(ctx, filepath.Join(dir, LogDir), signer); err != nil {
			return err
		}
	}
	// config.json last: its presence marks a complete ledger directory.
	return durable.CreateFile(filepath.Join(dir, ConfigFile), append(cb, '\n'), 0o644)
}

// readLimited reads a whole file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

// readLine reads a one-line file (a key or token) of at most 4 KiB.
func readLine(path string) (string, error) {
	b, err := readLimited(path, 4096)
	if err != nil {
		return "", err
	}
	return string(bytes.TrimRight(b, "\r\n")), nil
}
