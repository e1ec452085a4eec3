package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
	"golang.org/x/mod/sumdb/tlog"
)

// Limits of search and entry pages.
const (
	maxQuery         = 256 // bytes of a search query
	maxSearchResults = 200 // releases listed for one query
	maxMetadataShown = 1 << 20
	metadataTimeout  = 10 * time.Second
)

// notMadeByVendor returns the log indexes of the releases vendor mode
// reported as not made by the vendor. It reads every finding.
func notMadeByVendor(tx *store.Tx) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	err := tx.Findings(func(f store.FindingRecord) error {
		if f.Kind == alert.KindUnexpected && f.Index != nil {
			out[*f.Index] = true
		}
		return nil
	})
	return out, err
}

// entryData is the page of one log entry.
type entryData struct {
	Index     uint64
	Release   *releaseRow
	Findings  []store.FindingRecord
	Head      store.Head
	HaveProof bool
	LeafHash  tlog.Hash
	Proof     []tlog.Hash
	Metadata  string
	MetaNote  string // why Metadata is empty
	KeyIDs    []string
}

// entry serves /entry/{index}: the release logged there (if the entry is
// one), the findings about it, its inclusion proof in the auditor's own
// tree under the latest verified checkpoint, and its raw metadata with the
// key IDs of its signatures, fetched from the ledger and checked against
// the entry's SHA-256.
func (h *Handler) entry(w http.ResponseWriter, r *http.Request) {
	idx, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil || strconv.FormatUint(idx, 10) != r.PathValue("index") {
		http.NotFound(w, r)
		return
	}
	d := entryData{Index: idx}
	var haveHead bool
	err = h.db.View(func(tx *store.Tx) error {
		var err error
		if d.Head, haveHead, err = tx.Head(); err != nil || !haveHead || idx >= d.Head.Size {
			return err
		}
		notMade, err := notMadeByVendor(tx)
		if err != nil {
			return err
		}
		rel, ok, err := tx.ReleaseAt(idx)
		if err != nil {
			return err
		}
		if ok {
			d.Release = &releaseRow{Release: rel, NotMade: notMade[idx]}
			if rel.Role != "root" {
				ss, err := tx.ReleaseStatements(rel.Repo, rel.Role, rel.Version)
				if err != nil {
					return err
				}
				d.Release.Signoff = signoffOf(ss)
			}
		}
		if err := tx.Findings(func(f store.FindingRecord) error {
			if f.Index != nil && *f.Index == idx {
				d.Findings = append(d.Findings, f)
			}
			return nil
		}); err != nil {
			return err
		}
		hs, err := tx.Hashes().ReadHashes([]int64{tlog.StoredHashIndex(0, int64(idx))})
		if err != nil {
			return err
		}
		d.LeafHash = hs[0]
		p, err := tlog.ProveRecord(int64(d.Head.Size), int64(idx), tx.Hashes())
		d.Proof, d.HaveProof = p, err == nil
		return err
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	if !haveHead || idx >= d.Head.Size {
		http.Error(w, "the auditor has not audited this entry (yet)", http.StatusNotFound)
		return
	}
	if d.Release != nil {
		d.Metadata, d.KeyIDs, d.MetaNote = h.metadata(r.Context(), d.Release.SHA256)
	}
	h.render(w, "entry.html", d)
}

// metadata fetches and pretty-prints a release's metadata and lists the key
// IDs of its signatures.
func (h *Handler) metadata(ctx context.Context, sumHex string) (text string, keyIDs []string, note string) {
	if h.cfg.Metadata == nil {
		return "", nil, "this dashboard does not fetch metadata from the ledger"
	}
	raw, err := hex.DecodeString(sumHex)
	if err != nil || len(raw) != sha256.Size {
		return "", nil, "the entry's SHA-256 is malformed"
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	b, err := h.cfg.Metadata(ctx, [sha256.Size]byte(raw))
	switch {
	case err != nil:
		h.log.Warn("couldn't fetch metadata for an entry page", "sha256", sumHex, "err", err)
		return "", nil, "the ledger did not serve this metadata just now: " + err.Error()
	case b == nil:
		return "", nil, "the ledger does not serve this metadata"
	case len(b) > maxMetadataShown:
		return "", nil, "the metadata is larger than the dashboard shows (1 MiB)"
	}
	var signed struct {
		Signatures []struct {
			KeyID string `json:"keyid"`
		} `json:"signatures"`
	}
	if json.Unmarshal(b, &signed) == nil {
		for _, s := range signed.Signatures {
			keyIDs = append(keyIDs, s.KeyID)
		}
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") != nil {
		return string(b), keyIDs, ""
	}
	return pretty.String(), keyIDs, ""
}

type searchData struct {
	Q        string
	Repos    []string
	Releases []releaseRow
	More     bool
	Why      string
}

// search serves /search?q=: a log index goes to its entry page; otherwise
// the releases whose SHA-256 (64 hex digits) matches, or whose repository
// id or changed target paths contain q, newest first, at most 200.
func (h *Handler) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > maxQuery {
		http.Error(w, "query too long", http.StatusBadRequest)
		return
	}
	d := searchData{Q: q}
	if q == "" {
		h.render(w, "search.html", d)
		return
	}
	if n, err := strconv.ParseUint(q, 10, 64); err == nil {
		http.Redirect(w, r, "/entry/"+strconv.FormatUint(n, 10), http.StatusSeeOther)
		return
	}
	sum := strings.ToLower(q)
	isSum := len(sum) == 2*sha256.Size && isHex(sum)
	err := h.db.View(func(tx *store.Tx) error {
		notMade, err := notMadeByVendor(tx)
		if err != nil {
			return err
		}
		if err := tx.Repos(func(id string, _ *replay.RepoState) error {
			if !isSum && strings.Contains(id, q) {
				d.Repos = append(d.Repos, id)
			}
			return nil
		}); err != nil {
			return err
		}
		needle := q
		if isSum {
			needle = sum
		}
		return tx.FindReleases(needle, func(rel replay.Release) bool {
			if matches(rel, q, sum, isSum) {
				if len(d.Releases) == maxSearchResults {
					d.More = true
					return false
				}
				d.Releases = append(d.Releases, releaseRow{Release: rel, NotMade: notMade[rel.Index]})
			}
			return true
		})
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	sort.Slice(d.Releases, func(i, j int) bool { return d.Releases[i].Index > d.Releases[j].Index })
	h.render(w, "search.html", d)
}

// matches reports whether rel is found by the query: by SHA-256 when the
// query is one, else by repository id or a changed target's path.
func matches(rel replay.Release, q, sum string, isSum bool) bool {
	if isSum {
		return rel.SHA256 == sum
	}
	if strings.Contains(rel.Repo, q) {
		return true
	}
	for _, c := range rel.Changed {
		if strings.Contains(strings.TrimLeft(c, "+-~ "), q) {
			return true
		}
	}
	return false
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// setAlertState handles the alert form: state (acknowledged, resolved or
// open) and an optional note, stored durably before the redirect.
func (h *Handler) setAlertState(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed or oversized form", http.StatusRequestEntityTooLarge)
		return
	}
	state := r.PostForm.Get("state")
	switch state {
	case "open":
		state = store.AlertOpen
	case store.AlertOpen: // "": a form without a state changes nothing
		http.Error(w, "state must be acknowledged, resolved or open", http.StatusBadRequest)
		return
	}
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if !utf8.ValidString(note) {
		http.Error(w, "the note is not UTF-8 text", http.StatusBadRequest)
		return
	}
	if len(note) > store.MaxAlertNote {
		http.Error(w, "the note is too long (at most 2000 bytes)", http.StatusRequestEntityTooLarge)
		return
	}
	if state != store.AlertOpen && state != store.AlertAcknowledged && state != store.AlertResolved {
		http.Error(w, "state must be acknowledged, resolved or open", http.StatusBadRequest)
		return
	}
	if state == store.AlertResolved && note == "" {
		http.Error(w, "resolving an alert needs a note saying how it was resolved", http.StatusBadRequest)
		return
	}
	err = h.db.Update(func(tx *store.Tx) error { return tx.SetAlertState(id, state, note, h.cfg.Now()) })
	switch {
	case errors.Is(err, store.ErrNoFinding):
		http.NotFound(w, r)
		return
	case err != nil:
		h.fail(w, err)
		return
	}
	h.log.Info("alert state changed", "id", id, "state", state)
	if h.cfg.Changed != nil {
		h.cfg.Changed()
	}
	http.Redirect(w, r, "/alerts/"+url.PathEscape(strconv.FormatUint(id, 10)), http.StatusSeeOther)
}

// ago formats how long before now t was, to the second ("never" for zero).
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}
