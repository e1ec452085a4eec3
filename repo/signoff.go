package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/shiplog/shiplog/client/ledger"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/capped"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// SignoffDir is where a repository serves sign-off evidence, below its
// metadata directory: metadata/signoff/<target sha256 hex>.json
// (docs/spec/signoff.md, "The evidence file").
const SignoffDir = "signoff"

// PullOptions configure PullAttestations.
type PullOptions struct {
	// Ledger is the ledger's base URL; "" means the repository's.
	Ledger string
	// Policy is the tlog-policy every proof must satisfy; nil means the
	// repository's policy file.
	Policy *policy.Policy
	// Keys, when not empty, keeps only statements by these attesters (and
	// asks the ledger for only them, at most 32).
	Keys []*signoff.Attester
	// HTTPClient is used for the ledger; nil means a 60-second timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// PulledEvidence is what PullAttestations did for one target digest.
type PulledEvidence struct {
	SHA256  string   `json:"sha256"`
	Targets []string `json:"targets"`
	// Attestations is the number written; Dropped those the ledger sent
	// that did not verify (bad envelope or proof, another repository or
	// subject, an attester not in Keys).
	Attestations int  `json:"attestations"`
	Dropped      int  `json:"dropped,omitempty"`
	Truncated    bool `json:"truncated,omitempty"`
	// Written reports that the file changed.
	Written bool `json:"written"`
}

// PullAttestations fetches, for every target digest of the repository's
// committed targets (all roles), the sign-off evidence the ledger holds
// (GET /v1/attestations), keeps the attestations that verify — envelope
// signature, this repository and digest, a tlog-proof of its entry under
// the policy — and writes them as metadata/signoff/<sha256>.json, durably,
// only when the file changes. A digest with no verified statement gets no
// file (an old file is kept: statements in the log do not go away).
// Nothing is written before it verified.
func (r *Repo) PullAttestations(ctx context.Context, o PullOptions) ([]PulledEvidence, error) {
	p, lc, err := r.pullSetup(o)
	if err != nil {
		return nil, err
	}
	digests, err := r.targetDigests()
	if err != nil {
		return nil, err
	}
	keyIDs := make([]string, 0, len(o.Keys))
	for _, k := range o.Keys {
		keyIDs = append(keyIDs, k.ID.String())
	}
	if len(keyIDs) > 32 {
		return nil, errors.New("at most 32 attester keys per pull")
	}
	dir := filepath.Join(r.Dir, "metadata", SignoffDir)
	var out []PulledEvidence
	for _, d := range slices.Sorted(maps.Keys(digests)) {
		body, err := lc.Attestations(ctx, r.Config.Repository, d, keyIDs)
		if err != nil {
			return out, fmt.Errorf("couldn't fetch the attestations of %s: %w", d, err)
		}
		pe, file, err := r.verifyEvidence(d, body, p, o.Keys)
		if err != nil {
			return out, err
		}
		pe.Targets = digests[d]
		if file != nil {
			if pe.Written, err = writeIfChanged(dir, d+".json", file); err != nil {
				return out, err
			}
		}
		out = append(out, *pe)
	}
	return out, nil
}

// ErrPullNotConfigured means a pull has no ledger URL or no tlog-policy:
// neither given in PullOptions nor set in the repository's configuration.
// `shiplog repo refresh --pull-attestations` (and RefreshLoop) skip the
// pull with a log line for such a repository, so the deployment's refresh
// unit can pass the flag to every vendor; `repo attestations pull` fails.
var ErrPullNotConfigured = errors.New("attestations pull not configured")

func (r *Repo) pullSetup(o PullOptions) (*policy.Policy, *ledger.Client, error) {
	p, err := r.configuredPolicy(o.Policy)
	if errors.Is(err, errNoPolicy) {
		return nil, nil, fmt.Errorf("%w: %w; evidence is never written unverified", ErrPullNotConfigured, err)
	}
	if err != nil {
		return nil, nil, err
	}
	url := o.Ledger
	if url == "" {
		url = r.Config.Ledger
	}
	if url == "" {
		return nil, nil, fmt.Errorf("%w: no ledger URL: pass --ledger URL or set \"ledger\" in %s", ErrPullNotConfigured, ConfigFile)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return p, &ledger.Client{URL: url, HTTP: hc}, nil
}

// targetDigests maps each target sha256 (hex) of the committed targets
// roles to the paths that have it.
func (r *Repo) targetDigests() (map[string][]string, error) {
	out := map[string][]string{}
	err := r.committedView().walk(func(_ delegation, m *metadata.Metadata[metadata.TargetsType]) error {
		if m == nil {
			return nil
		}
		for path, t := range m.Signed.Targets {
			if h := t.Hashes["sha256"]; len(h) == 32 {
				d := hex.EncodeToString(h)
				if !slices.Contains(out[d], path) {
					out[d] = append(out[d], path)
				}
			}
		}
		return nil
	})
	for _, paths := range out {
		slices.Sort(paths)
	}
	return out, err
}

// verifyEvidence parses the ledger's evidence file of digest d and keeps
// the attestations that verify; it returns nil file bytes when none does.
func (r *Repo) verifyEvidence(d string, body []byte, p *policy.Policy, keys []*signoff.Attester) (*PulledEvidence, []byte, error) {
	e, err := signoff.ParseEvidence(body)
	if err != nil {
		return nil, nil, fmt.Errorf("the ledger's attestations of %s: %w", d, err)
	}
	if hex.EncodeToString(e.Subject[:]) != d {
		return nil, nil, fmt.Errorf("the ledger answered the attestations of another digest for %s", d)
	}
	pe := &PulledEvidence{SHA256: d, Truncated: e.Truncated}
	verify := signoff.PolicyProof(p)
	kept := &signoff.Evidence{Subject: e.Subject, Truncated: e.Truncated}
	for _, a := range e.Attestations {
		if err := r.verifyAttestation(a, e.Subject, keys, verify); err != nil {
			pe.Dropped++
			continue
		}
		kept.Attestations = append(kept.Attestations, a)
	}
	pe.Attestations = len(kept.Attestations)
	if pe.Attestations == 0 {
		return pe, nil, nil
	}
	file, err := kept.Format()
	return pe, file, err
}

func (r *Repo) verifyAttestation(a signoff.Attestation, subject [32]byte, keys []*signoff.Attester, verify signoff.VerifyProof) error {
	env, err := signoff.OpenEnvelope(a.Envelope)
	if err != nil {
		return err
	}
	if len(keys) > 0 && !slices.ContainsFunc(keys, func(k *signoff.Attester) bool { return k.ID == env.Attester.ID }) {
		return signoff.ErrUntrusted
	}
	if env.Statement.Repository != r.Config.Repository || env.Statement.Subject != subject {
		return errors.New("statement about another repository or target")
	}
	return verify(env.Entry().Format(), a.Proof)
}

// writeIfChanged durably writes dir/name unless it already holds b.
func writeIfChanged(dir, name string, b []byte) (bool, error) {
	path := filepath.Join(dir, name)
	if old, err := capped.ReadFile(path, signoff.MaxEvidenceSize); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	if err := durable.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return true, durable.WriteFile(path, b, durable.Public)
}
