// Package witness is a C2SP tlog-witness (c2sp.org/tlog-witness): it
// cosigns a log's checkpoint (c2sp.org/tlog-cosignature, cosignature/v1)
// only if the checkpoint is signed by a configured key of that log and is
// consistent with the latest checkpoint the witness cosigned for it, so that
// a log cannot show two histories to two readers unless it forks in front of
// the witness — and then the witness keeps both signed checkpoints as
// evidence.
//
// The add-checkpoint flow is: parse the request (witness/addcheckpoint),
// look the origin up in the log list (404), verify the log's signature over
// the raw note (403), parse the checkpoint and check old ≤ size (400), take a
// token from the log's quota (429), Check against the latest state (409 with
// text/x.tlog.size, 422 for a bad proof or a same-size different root),
// cosign in memory, then compare-and-swap the new state into the durable
// Store. Only after that commit is durable does the cosignature leave the
// process (200), so two racing requests can never both succeed and a crash
// can never roll the witness back.
//
// Read endpoints (the monitoring prefix is the submission prefix):
// GET <prefix>/<hex SHA-256 of origin>/checkpoint returns the latest
// cosigned checkpoint with the log's signature and the witness's
// cosignature; GET <prefix>/<hex>/misbehaviour and GET <prefix>/misbehaviour
// return the misbehaviour records kept as JSON.
package witness

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	"golang.org/x/mod/sumdb/note"
)

// Config configures a Witness.
type Config struct {
	// Signer makes the cosignatures: a cosignature/v1 signer
	// (notekey.NewWitnessSigner). Required.
	Signer note.Signer
	// Store is the durable state. Required; the Witness does not close it.
	Store *Store
	// Logs is the initial log list; nil means none. See SetLogs.
	Logs *LogList
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the witness's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now returns the current time for quotas; nil means time.Now.
	Now func() time.Time
}

// Witness serves add-checkpoint. It is safe for concurrent use.
type Witness struct {
	signer  note.Signer
	store   *Store
	logs    atomic.Pointer[LogList]
	log     *slog.Logger
	now     func() time.Time
	limiter *limiter
	metrics *metrics
}

// New returns a Witness.
func New(cfg Config) (*Witness, error) {
	if cfg.Signer == nil || cfg.Store == nil {
		return nil, errors.New("witness: Signer and Store are required")
	}
	w := &Witness{signer: cfg.Signer, store: cfg.Store, log: cfg.Logger, now: cfg.Now, limiter: newLimiter()}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	var err error
	if w.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	w.store.onMisbehaviour = w.metrics.misbehaviour
	w.store.onCommit = w.metrics.commit
	w.SetLogs(cfg.Logs)
	return w, nil
}

// SetLogs replaces the log list. Requests in flight finish with the list
// they started with. Removing a log keeps its state: if it is added again,
// the witness resumes from the last checkpoint it cosigned, never from zero.
func (w *Witness) SetLogs(l *LogList) {
	if l == nil {
		l = &LogList{}
	}
	w.logs.Store(l)
	w.metrics.logs.Set(float64(l.Len()))
}

// Logs returns the current log list.
func (w *Witness) Logs() *LogList { return w.logs.Load() }

// AddCheckpoint processes an add-checkpoint request body and returns the
// witness's cosignature lines. Its errors are those of Check, plus
// ErrUnknownLog, ErrForbidden, *RateLimitError and ErrUnavailable.
func (w *Witness) AddCheckpoint(ctx context.Context, body []byte) ([]byte, error) {
	req, err := addcheckpoint.ParseRequest(body)
	if err != nil {
		return nil, ErrBadRequest
	}
	origin, _, _ := bytes.Cut(req.Checkpoint, []byte("\n"))
	l := w.logs.Load().Log(string(origin))
	if l == nil {
		return nil, ErrUnknownLog // spec: unknown origin → 404
	}
	// Verify the log's signature over the raw bytes before parsing the body.
	n, err := note.Open(req.Checkpoint, l.known)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, ErrForbidden // spec: no valid signature from a trusted key → 403
		}
		return nil, ErrBadRequest
	}
	cp, err := checkpoint.ParseUnverified([]byte(n.Text))
	if err != nil || cp.Origin != l.Origin {
		return nil, ErrBadRequest
	}
	if req.OldSize > cp.Size {
		return nil, ErrBadRequest // spec: old > size → 400
	}
	if ok, retry := w.limiter.allow(l.Origin, l.QPD, w.now()); !ok {
		return nil, &RateLimitError{RetryAfter: retry}
	}
	return w.cosign(ctx, l, req, n, cp)
}

// cosign checks the verified checkpoint against the latest state, signs it
// and commits the new state; the signature is returned only once the
// commit is durable.
func (w *Witness) cosign(ctx context.Context, l *Log, req *addcheckpoint.Request, n *note.Note, cp checkpoint.Checkpoint) ([]byte, error) {
	logSigned := logSignedNote(n)
	latest := w.store.Latest(l.Origin)
	if err := Check(latest, req.OldSize, req.Proof, cp); err != nil {
		w.recordIfMisbehaviour(ctx, l.Origin, err, latest, logSigned, cp, req.Proof)
		return nil, err
	}
	sigs, err := checkpoint.Cosign([]byte(n.Text), w.signer)
	if err != nil {
		return nil, err
	}
	next := State{Size: cp.Size, Hash: cp.Hash, Note: checkpoint.AddSignatures(logSigned, sigs)}
	if err := w.store.Update(ctx, l.Origin, latest, next, logSigned); err != nil {
		return nil, err
	}
	return sigs, nil
}

// recordIfMisbehaviour keeps evidence of a validly signed checkpoint that
// conflicts with the latest cosigned one (spec: "the witness MAY log the
// request even if the consistency proof doesn't verify"): a same-size
// different root is a fork whatever the request's old size; a failed proof
// is kept as unproven.
func (w *Witness) recordIfMisbehaviour(ctx context.Context, origin string, err error, latest State, received []byte, cp checkpoint.Checkpoint, proof [][32]byte) {
	var kind string
	switch {
	case cp.Size == latest.Size && cp.Hash != latest.Hash:
		kind = KindFork
	case errors.Is(err, ErrBadProof):
		kind = KindUnproven
	default:
		return
	}
	m := newMisbehaviour(origin, kind, latest, received, cp.Size, proof, w.now())
	if err := w.store.Record(ctx, m); err != nil {
		w.log.Error("couldn't record log misbehaviour", "origin", origin, "kind", kind, "error", err)
	}
}

// logSignedNote re-encodes a verified note with only the signatures that
// verified (the log's), dropping unknown signature lines.
func logSignedNote(n *note.Note) []byte {
	var b bytes.Buffer
	b.WriteString(n.Text)
	b.WriteString("\n")
	for _, s := range n.Sigs {
		b.WriteString("— " + s.Name + " " + s.Base64 + "\n")
	}
	return b.Bytes()
}
