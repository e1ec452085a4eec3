package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Limits bound the work one refresh does on remote data. Zero fields take
// the defaults.
type Limits struct {
	MaxRootRotations   int   // new root versions per refresh; default 32
	MaxDelegations     int   // targets roles visited per search; default 32
	RootMaxLength      int64 // default 512000
	TimestampMaxLength int64 // default 16384
	SnapshotMaxLength  int64 // default 2000000
	TargetsMaxLength   int64 // default 5000000
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxRootRotations <= 0 {
		l.MaxRootRotations = 32
	}
	if l.MaxDelegations <= 0 {
		l.MaxDelegations = 32
	}
	def(&l.RootMaxLength, 512000)
	def(&l.TimestampMaxLength, 16384)
	def(&l.SnapshotMaxLength, 2000000)
	def(&l.TargetsMaxLength, 5000000)
	return l
}

// Trusted is the metadata a device trusts before an update: the exact bytes
// of its latest root and, when it has them, its timestamp, snapshot and
// targets roles, and its newest checkpoint per log (signed notes).
type Trusted struct {
	Root        []byte
	Timestamp   []byte
	Snapshot    []byte
	Targets     map[string][]byte // role name -> bytes
	Checkpoints map[string][]byte // log origin -> signed checkpoint note
}

// Client runs the update loop against one repository. Its fields are
// configuration; a Client is safe for concurrent use if Remote is, and each
// Refresh returns an independent Session.
type Client struct {
	// Remote is where metadata, proofs and targets come from. Required.
	Remote Remote
	// Gate is the transparency gate; nil turns it off (plain TUF).
	Gate *Gate
	// Time is the reference time for every expiry check; zero means the
	// time Refresh is called.
	Time   time.Time
	Limits Limits
	// OnTrusted, if set, is called with each metadata file as soon as the
	// state machine trusts it (role name, exact bytes). The tuf-conformance
	// client persists metadata this way; the device does not (it commits its
	// state only after an install).
	OnTrusted func(role string, data []byte) error
	// Logger receives progress at Debug level; nil discards.
	Logger *slog.Logger
}

// Refresh runs TUF §5.3–5.5 from trusted: the root chain (each new root
// through the gate), timestamp, snapshot and top-level targets (through the
// gate). On error, nothing of trusted is changed; what the Session trusts is
// only in memory until the caller persists Session.Trusted().
func (c *Client) Refresh(ctx context.Context, trusted Trusted) (*Session, error) {
	if c.Remote == nil {
		return nil, errors.New("update: no remote")
	}
	root, err := loadTrustedRoot(trusted.Root)
	if err != nil {
		return nil, fmt.Errorf("couldn't load the trusted root: %w", err)
	}
	ref := c.Time
	if ref.IsZero() {
		ref = time.Now()
	}
	tm := &trustedmetadata.TrustedMetadata{Root: root, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: ref.UTC()}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Session{c: c, tm: tm, in: trusted, limits: c.Limits.withDefaults(), log: log, roles: map[string][]byte{},
		verified: map[roleEdge]*metadata.Metadata[metadata.TargetsType]{}}
	if c.Gate != nil {
		if c.Gate.Policy == nil {
			return nil, errors.New("update: gate without a policy")
		}
		s.view = newLogView(c.Gate, trusted.Checkpoints, log)
	}
	if err := s.loadRoots(ctx); err != nil {
		return nil, err
	}
	if err := s.loadTimestamp(ctx); err != nil {
		return nil, err
	}
	if err := s.loadSnapshot(ctx); err != nil {
		return nil, err
	}
	if _, err := s.loadRole(ctx, metadata.TARGETS, metadata.ROOT); err != nil {
		return nil, err
	}
	return s, nil
}

// Download fetches target t from the remote and streams it to w, at most
// t.Length bytes, hashing as it goes; it returns an error if the length or
// any listed hash (sha256, sha512; others are refused) does not match. On
// error w may have received unverified bytes: the caller must discard them.
func (s *Session) Download(ctx context.Context, t *metadata.TargetFiles, w io.Writer) error {
	h, err := newTargetHasher(t)
	if err != nil {
		return err
	}
	rc, err := s.c.Remote.Target(ctx, s.targetRef(t))
	if err != nil {
		return fmt.Errorf("couldn't fetch target %s: %w", t.Path, err)
	}
	defer rc.Close()
	return h.copy(w, rc)
}
