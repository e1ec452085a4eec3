package evidence

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
	"golang.org/x/mod/sumdb/note"
)

// UntrustedError means a checkpoint is not signed by a key the policy
// trusts for its origin: Err is ErrUnknownLog (no policy log has that
// origin) or checkpoint.ErrNoLogSig (the policy's key for it did not
// sign). It proves nothing about the log, since anyone can write such a
// note, and is most often a configuration mistake: the policy's log line
// names another key or origin than the log signs with. Error says which
// keys signed and which the policy trusts. Two properly signed checkpoints
// that are inconsistent are a fork (*ForkError), never this.
type UntrustedError struct {
	Err    error
	Origin string
	// Signers are the note's signature lines as "name (key hash 0x…)".
	Signers []string
	// Trusted are the policy's logs, as "origin (key hash 0x…)".
	Trusted []string
}

func (e *UntrustedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	fmt.Fprintf(&b, ": checkpoint of %q, signed by %s; the policy trusts %s", e.Origin, list(e.Signers), list(e.Trusted))
	b.WriteString(" (not evidence against the log, and most often a configuration problem: check the policy's log line against the log's public key, e.g. the ledger's log.vkey)")
	return b.String()
}

func (e *UntrustedError) Unwrap() error { return e.Err }

func list(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

// maxListed bounds the signature lines and logs an UntrustedError lists.
const maxListed = 8

// Untrusted wraps err in an *UntrustedError describing msg's signers and
// p's logs when err is ErrUnknownLog or checkpoint.ErrNoLogSig; other
// errors are returned unchanged. Nothing in msg is trusted: names are
// quoted as printable text and lists are bounded.
func Untrusted(err error, msg []byte, p *policy.Policy) error {
	if !errors.Is(err, ErrUnknownLog) && !errors.Is(err, checkpoint.ErrNoLogSig) {
		return err
	}
	origin, _, _ := cutLine(msg)
	e := &UntrustedError{Err: err, Origin: printable(origin)}
	var unverified *note.UnverifiedNoteError
	if _, oerr := note.Open(msg, note.VerifierList()); errors.As(oerr, &unverified) {
		for _, s := range unverified.Note.UnverifiedSigs {
			if len(e.Signers) == maxListed {
				break
			}
			e.Signers = append(e.Signers, fmt.Sprintf("%q (key hash %08x)", printable(s.Name), s.Hash))
		}
	}
	for _, l := range p.Logs {
		if len(e.Trusted) == maxListed {
			break
		}
		e.Trusted = append(e.Trusted, fmt.Sprintf("%q (key hash %08x)", l.Origin, l.Verifier.KeyHash()))
	}
	return e
}

// printable keeps at most 100 printable ASCII characters of s.
func printable(s string) string {
	out := make([]byte, 0, min(len(s), 100))
	for i := 0; i < len(s) && len(out) < 100; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
