package evidencetest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/proof"
	"golang.org/x/mod/sumdb/note"
)

// timedSigner is a cosignature/v1 signer (c2sp.org/tlog-cosignature) that
// stamps a fixed time instead of the current one, so tests can make
// cosignatures of any age.
type timedSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	t    uint64
}

func (s *timedSigner) Name() string    { return s.name }
func (s *timedSigner) KeyHash() uint32 { return s.hash }
func (s *timedSigner) Sign(msg []byte) ([]byte, error) {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", s.t, msg)
	sig := binary.BigEndian.AppendUint64(nil, s.t)
	return append(sig, ed25519.Sign(s.key, m)...), nil
}

// TimedSigner returns a signer of witness i's cosignature/v1 signatures
// carrying the timestamp t (seconds since the Unix epoch, as the spec's
// uint64).
func (l *Log) TimedSigner(i int, t uint64) note.Signer {
	w := l.Witnesses[i]
	rest := w.SKey
	for range 4 { // PRIVATE+KEY+<name>+<hash>+<base64>; the base64 may hold '+'
		_, rest, _ = strings.Cut(rest, "+")
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	must(err)
	if len(raw) != 1+ed25519.SeedSize {
		panic("evidencetest: unexpected witness key")
	}
	return &timedSigner{name: w.Signer.Name(), hash: w.Signer.KeyHash(), key: ed25519.NewKeyFromSeed(raw[1:]), t: t}
}

// CheckpointAtTimes returns the checkpoint at size signed by the log and
// cosigned by the witnesses in times (witness index -> cosignature time).
func (l *Log) CheckpointAtTimes(size uint64, times map[int]time.Time) []byte {
	msg, err := checkpoint.Sign(l.Body(size), l.Signer)
	must(err)
	text := l.Body(size).Format()
	for i := range l.Witnesses {
		t, ok := times[i]
		if !ok {
			continue
		}
		sig, err := checkpoint.Cosign(text, l.TimedSigner(i, uint64(t.Unix())))
		must(err)
		msg = checkpoint.AddSignatures(msg, sig)
	}
	return msg
}

// ProofAtTimes is ProofAt with the checkpoint cosigned by the witnesses in
// times at those times.
func (l *Log) ProofAtTimes(index, size uint64, times map[int]time.Time) []byte {
	hs, err := l.tree.InclusionProof(index, size)
	must(err)
	p := proof.Proof{Index: index, Checkpoint: l.CheckpointAtTimes(size, times)}
	for _, h := range hs {
		p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
	}
	return p.Format()
}
