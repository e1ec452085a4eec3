package witness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/shiplog/shiplog/internal/buildinfo/buildmetric"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/internal/keyref"
)

// Files of a witness directory.
const (
	KeyFile     = "witness.skey" // the witness's Ed25519 signer key (or a KEYREF line, internal/keyref), mode 0600
	LogListFile = "logs"         // the log list (ParseLogList), edited by the operator
	StateFile   = "state.db"     // the durable state (Store)
)

// Init creates a witness directory: a new key named name, an empty log
// list, and an empty state store. It refuses a directory that already holds
// a key. It returns the key's Ed25519 vkey and its cosignature/v1 vkey.
func Init(dir, name string) (vkey, cosignatureVKey string, err error) {
	return InitKeyRef(context.Background(), dir, name, "")
}

// InitKeyRef is Init with the witness key held in a PKCS #11 token or a KMS
// (internal/keyref), named by ref, instead of a new key file: witness.skey
// then holds the reference, never a secret. The key must be Ed25519
// (cosignature/v1 has no ECDSA form). An empty ref is Init.
func InitKeyRef(ctx context.Context, dir, name, ref string) (vkey, cosignatureVKey string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	skey, vkey, cosignatureVKey, err := notekey.GenerateWitness(rand.Reader, name)
	if ref != "" {
		skey = strings.TrimSpace(keyref.FormatNoteKeyRef(name, ref))
		_, vkey, cosignatureVKey, err = keyref.OpenWitnessSigner(ctx, skey)
	}
	if err != nil {
		return "", "", err
	}
	if err := durable.CreateFile(filepath.Join(dir, KeyFile), []byte(skey+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("couldn't create witness key: %w", err)
	}
	err = durable.CreateFile(filepath.Join(dir, LogListFile), []byte(logListHeader+"\n"), 0o644)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return "", "", fmt.Errorf("couldn't create log list: %w", err)
	}
	s, err := OpenStore(filepath.Join(dir, StateFile), nil)
	if err != nil {
		return "", "", err
	}
	return vkey, cosignatureVKey, s.Close()
}

// AddLog appends a log to the log list of the witness directory dir after
// checking that the resulting list parses. A running witness picks it up
// within its reload interval, or at once on SIGHUP.
func AddLog(dir, vkey, origin string, qpd uint64) error {
	path := filepath.Join(dir, LogListFile)
	old, err := readFileLimited(path, MaxLogListSize)
	if err != nil {
		return err
	}
	entry, err := FormatLogEntry(vkey, origin, qpd)
	if err != nil {
		return err
	}
	next := string(old)
	if next != "" && !strings.HasSuffix(next, "\n") {
		next += "\n"
	}
	next += "\n" + entry
	if _, err := ParseLogList([]byte(next)); err != nil {
		return fmt.Errorf("log list would not parse: %w", err)
	}
	return durable.WriteFile(path, []byte(next), 0o644)
}

// ServeOptions configures Serve.
type ServeOptions struct {
	Dir    string // witness directory made by Init
	Listen string // address, e.g. 127.0.0.1:7380; port 0 picks a free one
	Prefix string // submission and monitoring prefix, "" by default
	Logger *slog.Logger
	// ReloadInterval is how often the log list file is checked for changes;
	// 0 means 5s.
	ReloadInterval time.Duration
	// Reload, if not nil, triggers an immediate reload of the log list (the
	// command sends on it on SIGHUP).
	Reload <-chan struct{}
}

// Serve runs a witness from dir until ctx ends, then shuts down gracefully.
// It logs "listening" with the bound address once it accepts connections.
func Serve(ctx context.Context, o ServeOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	skey, err := readFileLimited(filepath.Join(o.Dir, KeyFile), 4096)
	if err != nil {
		return err
	}
	signer, _, _, err := keyref.OpenWitnessSigner(ctx, string(skey))
	if err != nil {
		return err
	}
	logs, stamp, err := loadLogList(o.Dir)
	if err != nil {
		return err
	}
	store, err := OpenStore(filepath.Join(o.Dir, StateFile), log)
	if err != nil {
		return err
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildmetric.Collector())
	w, err := New(Config{Signer: signer, Store: store, Logs: logs, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           w.Handler(o.Prefix, reg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "name", signer.Name(), "logs", logs.Len())
	go w.reloadLoop(ctx, o, stamp)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// reloadLoop reloads the log list when its file changes or on o.Reload. A
// list that does not parse is logged and ignored: the witness keeps the
// previous one.
func (w *Witness) reloadLoop(ctx context.Context, o ServeOptions, stamp fileStamp) {
	every := o.ReloadInterval
	if every == 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.Reload:
			force = true
		}
		cur, err := statLogList(o.Dir)
		if err != nil || (!force && cur == stamp) {
			continue
		}
		logs, st, err := loadLogList(o.Dir)
		if err != nil {
			w.log.Error("couldn't reload log list; keeping the previous one", "error", err)
			stamp = cur
			continue
		}
		stamp = st
		w.SetLogs(logs)
		w.log.Info("log list reloaded", "logs", logs.Len())
	}
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

func statLogList(dir string) (fileStamp, error) {
	fi, err := os.Stat(filepath.Join(dir, LogListFile))
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

func loadLogList(dir string) (*LogList, fileStamp, error) {
	st, err := statLogList(dir)
	if err != nil {
		return nil, st, err
	}
	b, err := readFileLimited(filepath.Join(dir, LogListFile), MaxLogListSize)
	if err != nil {
		return nil, st, err
	}
	l, err := ParseLogList(b)
	if err != nil {
		return nil, st, err
	}
	return l, st, nil
}

// readFileLimited reads a whole file, refusing one larger than max bytes.
func readFileLimited(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}
