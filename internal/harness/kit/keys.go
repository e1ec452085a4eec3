package kit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

// Keys are the signing keys of a test log and its witnesses.
type Keys struct {
	// Origin is the log's origin line; SKey and VKey its note keys.
	Origin, SKey, VKey string
	// Witnesses are named w0.example, w1.example, ...
	Witnesses []Witness
	logSigner note.Signer
}

// Witness is an in-process witness key.
type Witness struct {
	Name string
	// SKey is the signer key, VKey the Ed25519 note vkey (0x01) and
	// CosignVKey the cosignature/v1 vkey (0x04) of the same key.
	SKey, VKey, CosignVKey string
	Signer                 note.Signer
}

// NewKeys makes a log key for origin and n witness keys.
func NewKeys(origin string, n int) *Keys {
	skey, vkey, err := notekey.GenerateLog(rand.Reader, origin)
	must(err)
	k := &Keys{Origin: origin, SKey: skey, VKey: vkey}
	k.logSigner, err = notekey.NewLogSigner(skey)
	must(err)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("w%d.example", i)
		ws, wv, cv, err := notekey.GenerateWitness(rand.Reader, name)
		must(err)
		s, err := notekey.NewWitnessSigner(ws)
		must(err)
		k.Witnesses = append(k.Witnesses, Witness{Name: name, SKey: ws, VKey: wv, CosignVKey: cv, Signer: s})
	}
	return k
}

// LogSigner returns the log's note signer.
func (k *Keys) LogSigner() note.Signer { return k.logSigner }

// Policy returns the tlog-policy text for the log and its witnesses
// (named w0, w1, ... by their cosignature/v1 keys) with a quorum of q of
// them; with q 0 it names no witness and says "quorum none". urls, if
// given, are the witnesses' URLs.
func (k *Keys) Policy(q int, urls ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s\n", k.VKey)
	if q == 0 { // a policy may name only witnesses that count towards its quorum
		b.WriteString("quorum none\n")
		return []byte(b.String())
	}
	var names []string
	for i, w := range k.Witnesses {
		names = append(names, fmt.Sprintf("w%d", i))
		u := ""
		if i < len(urls) {
			u = " " + urls[i]
		}
		fmt.Fprintf(&b, "witness w%d %s%s\n", i, w.CosignVKey, u)
	}
	fmt.Fprintf(&b, "group q %d %s\nquorum q\n", q, strings.Join(names, " "))
	return []byte(b.String())
}

// PolicyAll is Policy with a quorum of every witness.
func (k *Keys) PolicyAll() []byte { return k.Policy(len(k.Witnesses)) }

// Cosign returns the signed note with cosignatures of the given witnesses
// (indexes; all when none are named) added.
func (k *Keys) Cosign(signed []byte, witnesses ...int) ([]byte, error) {
	var signers []note.Signer
	if len(witnesses) == 0 {
		for _, w := range k.Witnesses {
			signers = append(signers, w.Signer)
		}
	}
	for _, i := range witnesses {
		signers = append(signers, k.Witnesses[i].Signer)
	}
	return cosign(signed, signers)
}

func cosign(signed []byte, signers []note.Signer) ([]byte, error) {
	body, _, ok := strings.Cut(string(signed), "\n\n")
	if !ok {
		return nil, errors.New("not a signed note")
	}
	if len(signers) == 0 {
		return signed, nil
	}
	lines, err := checkpoint.Cosign([]byte(body+"\n"), signers...)
	if err != nil {
		return nil, err
	}
	return checkpoint.AddSignatures(signed, lines), nil
}

// LocalCosigner cosigns with in-process witness keys; it stands in for
// witness/client (the ledger's Cosigner) in unit tests. Fail, when set and
// true, makes it fail as if the witnesses were unreachable.
type LocalCosigner struct {
	Witnesses []Witness
	Fail      func() bool
}

// Cosign adds the witnesses' cosignatures to the signed note n.
func (c *LocalCosigner) Cosign(_ context.Context, n []byte) ([]byte, error) {
	if c.Fail != nil && c.Fail() {
		return nil, errors.New("witnesses unreachable")
	}
	var signers []note.Signer
	for _, w := range c.Witnesses {
		signers = append(signers, w.Signer)
	}
	return cosign(n, signers)
}
