package sandbox

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// forgeUnloggedRelease does what an attacker holding the vendor's online keys
// can do without the ledger: sign a new targets version with a backdoored
// app.bin, and a snapshot and timestamp that expose it, straight into the
// served repository. It returns a function that puts the repository back.
func (s *sandbox) forgeUnloggedRelease() (undo func(), err error) {
	md := func(name string) string { return s.path("repo", "metadata", name) }
	tsBytes, err := os.ReadFile(md("timestamp.json"))
	if err != nil {
		return nil, err
	}
	var created []string
	undo = func() {
		for _, p := range created {
			os.Remove(p)
		}
		durable.WriteFile(md("timestamp.json"), tsBytes, durable.Public)
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	write := func(path string, b []byte) error {
		created = append(created, path)
		return durable.WriteFile(path, b, durable.Public)
	}
	signer := func(role string) (*keys.Private, error) {
		return keys.Load(s.path("keys", role+".key"), func() (string, error) { return "", nil })
	}

	ts, err := metadata.Timestamp().FromBytes(tsBytes)
	if err != nil {
		return nil, err
	}
	snapVersion := ts.Signed.Meta["snapshot.json"].Version
	snap, err := metadata.Snapshot().FromFile(md(strconv.FormatInt(snapVersion, 10) + ".snapshot.json"))
	if err != nil {
		return nil, err
	}
	targetsVersion := snap.Signed.Meta["targets.json"].Version
	targets, err := metadata.Targets().FromFile(md(strconv.FormatInt(targetsVersion, 10) + ".targets.json"))
	if err != nil {
		return nil, err
	}

	// The backdoored payload, stored as the repository stores targets.
	payload := []byte("backdoored firmware\n")
	sum := sha256.Sum256(payload)
	tf, err := metadata.TargetFile().FromBytes("app.bin", payload, "sha256")
	if err != nil {
		return nil, err
	}
	if err := write(s.path("repo", "targets", fmt.Sprintf("%x.app.bin", sum)), payload); err != nil {
		return nil, err
	}
	targets.Signed.Targets["app.bin"] = tf
	targets.Signed.Version++
	targets.Signed.Expires = time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	tb, err := signAndEncode(targets, signer, "targets")
	if err != nil {
		return nil, err
	}
	if err := write(md(fmt.Sprintf("%d.targets.json", targets.Signed.Version)), tb); err != nil {
		return nil, err
	}

	snap.Signed.Meta["targets.json"] = metaFile(targets.Signed.Version, tb)
	snap.Signed.Version++
	sb, err := signAndEncode(snap, signer, "snapshot")
	if err != nil {
		return nil, err
	}
	if err := write(md(fmt.Sprintf("%d.snapshot.json", snap.Signed.Version)), sb); err != nil {
		return nil, err
	}

	ts.Signed.Meta["snapshot.json"] = metaFile(snap.Signed.Version, sb)
	ts.Signed.Version++
	tsb, err := signAndEncode(ts, signer, "timestamp")
	if err != nil {
		return nil, err
	}
	if err := durable.WriteFile(md("timestamp.json"), tsb, durable.Public); err != nil {
		return nil, err
	}
	return undo, nil
}

func metaFile(version int64, b []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(b)
	m := metadata.MetaFile(version)
	m.Length = int64(len(b))
	m.Hashes = metadata.Hashes{"sha256": sum[:]}
	return m
}

func signAndEncode[T metadata.Roles](m *metadata.Metadata[T], signer func(string) (*keys.Private, error), role string) ([]byte, error) {
	k, err := signer(role)
	if err != nil {
		return nil, err
	}
	sg, err := k.Signer()
	if err != nil {
		return nil, err
	}
	m.ClearSignatures()
	if _, err := m.Sign(sg); err != nil {
		return nil, err
	}
	b, err := m.ToBytes(false)
	if err != nil {
		return nil, err
	}
	var probe json.RawMessage
	if json.Unmarshal(b, &probe) != nil {
		return nil, fmt.Errorf("encoding %s failed", role)
	}
	return b, nil
}
