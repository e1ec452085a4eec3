package bundle

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cbundle "github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/shiplog/shiplog/evidence/signoff"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Info is an unverified description of a bundle, for people.
type Info struct {
	File       string        `json:"file"`
	Size       int64         `json:"size"`
	Repository string        `json:"repository"`
	Roots      []int64       `json:"roots"`
	Timestamp  RoleInfo      `json:"timestamp"`
	Snapshot   RoleInfo      `json:"snapshot"`
	Roles      []RoleInfo    `json:"roles"`
	Payloads   []PayloadInfo `json:"payloads"`
	Signoffs   []SignoffInfo `json:"signoffs,omitempty"`
}

// SignoffInfo describes the sign-off evidence of one digest: who signed,
// unverified (the envelopes' signatures and proofs are checked by devices).
type SignoffInfo struct {
	SHA256       string   `json:"sha256"`
	Attestations int      `json:"attestations"`
	Attesters    []string `json:"attesters"`
	// SourceLocal names the attesters whose statement says they rebuilt
	// from a local copy of the source, not the fetched declared source
	// ("source_local", docs/spec/signoff.md).
	SourceLocal []string `json:"source_local,omitempty"`
	Truncated   bool     `json:"truncated,omitempty"`
}

// RoleInfo describes one metadata file in a bundle.
type RoleInfo struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	Bytes   int       `json:"bytes"`
	// Log, Index and TreeSize come from the tlog-proof, unverified.
	Log      string `json:"log,omitempty"`
	Index    uint64 `json:"index,omitempty"`
	TreeSize uint64 `json:"tree_size,omitempty"`
}

// PayloadInfo describes one payload.
type PayloadInfo struct {
	Path    string `json:"path"`
	Length  uint64 `json:"length"`
	SHA256  string `json:"sha256"`
	Omitted bool   `json:"omitted,omitempty"`
}

// Inspect opens a bundle file and describes it without verifying it.
func Inspect(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := cbundle.Open(f, fi.Size())
	if err != nil {
		return nil, err
	}
	h := b.Header
	in := &Info{File: path, Size: fi.Size(), Repository: h.Repository}
	for _, m := range h.Roots {
		in.Roots = append(in.Roots, int64(m.Version))
	}
	in.Timestamp = describe(&pb.Metadata{Role: "timestamp", Content: h.Timestamp})
	in.Snapshot = describe(h.Snapshot)
	for _, m := range h.Targets {
		in.Roles = append(in.Roles, describe(m))
	}
	for _, p := range h.Payloads {
		in.Payloads = append(in.Payloads, PayloadInfo{Path: p.TargetPath, Length: p.Length, SHA256: hex.EncodeToString(p.Sha256), Omitted: p.Omitted})
	}
	for _, so := range h.Signoffs {
		e := b.Signoff([32]byte(so.Subject)) // Open parsed every one
		si := SignoffInfo{SHA256: hex.EncodeToString(so.Subject), Attestations: len(e.Attestations), Truncated: e.Truncated, Attesters: []string{}}
		for _, a := range e.Attestations {
			if u, err := signoff.ParseEnvelope(a.Envelope); err == nil {
				si.Attesters = append(si.Attesters, u.Attester.Name)
				if st, err := signoff.ParseStatement(u.Payload); err == nil && st.SourceLocal {
					si.SourceLocal = append(si.SourceLocal, u.Attester.Name)
				}
			}
		}
		in.Signoffs = append(in.Signoffs, si)
	}
	return in, nil
}

func describe(m *pb.Metadata) RoleInfo {
	ri := RoleInfo{Role: m.Role, Version: int64(m.Version), Bytes: len(m.Content)}
	var hdr struct {
		Signed struct {
			Version int64     `json:"version"`
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if md, err := metadata.Targets().FromBytes(m.Content); err == nil {
		hdr.Signed.Version, hdr.Signed.Expires = md.Signed.Version, md.Signed.Expires
	} else if md, err := metadata.Timestamp().FromBytes(m.Content); err == nil {
		hdr.Signed.Version, hdr.Signed.Expires = md.Signed.Version, md.Signed.Expires
	} else if md, err := metadata.Snapshot().FromBytes(m.Content); err == nil {
		hdr.Signed.Version, hdr.Signed.Expires = md.Signed.Version, md.Signed.Expires
	}
	ri.Version, ri.Expires = hdr.Signed.Version, hdr.Signed.Expires
	if p, err := proof.Parse(m.TlogProof); err == nil {
		if i := strings.Index(string(p.Checkpoint), "\n\n"); i > 0 {
			if c, err := checkpoint.ParseUnverified(p.Checkpoint[:i+1]); err == nil {
				ri.Log, ri.TreeSize = c.Origin, c.Size
			}
		}
		ri.Index = p.Index
	}
	return ri
}

// Print writes in for a person.
func (in *Info) Print(w io.Writer) {
	fmt.Fprintf(w, "bundle %s (%d bytes, unverified)\nrepository: %s\nroots: %v\n", in.File, in.Size, clean(in.Repository), in.Roots)
	for _, r := range append([]RoleInfo{in.Timestamp, in.Snapshot}, in.Roles...) {
		fmt.Fprintf(w, "  %-12s v%-4d expires %s  %d bytes", clean(r.Role), r.Version, r.Expires.Format(time.RFC3339), r.Bytes)
		if r.Log != "" {
			fmt.Fprintf(w, "  logged in %s at %d (tree size %d)", clean(r.Log), r.Index, r.TreeSize)
		}
		fmt.Fprintln(w)
	}
	for _, p := range in.Payloads {
		mark := ""
		if p.Omitted {
			mark = "  [omitted: the device must hold it]"
		}
		fmt.Fprintf(w, "  payload %s  %d bytes  sha256 %s%s\n", clean(p.Path), p.Length, p.SHA256, mark)
	}
	for _, s := range in.Signoffs {
		names := make([]string, len(s.Attesters))
		for i, n := range s.Attesters {
			names[i] = clean(n)
		}
		fmt.Fprintf(w, "  sign-off sha256 %s  %d statement(s) by %s (unverified)\n", s.SHA256, s.Attestations, strings.Join(names, ", "))
		if len(s.SourceLocal) > 0 {
			local := make([]string, len(s.SourceLocal))
			for i, n := range s.SourceLocal {
				local[i] = clean(n)
			}
			fmt.Fprintf(w, "    rebuilt from a local copy of the source, not the fetched declared source: %s\n", strings.Join(local, ", "))
		}
	}
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
