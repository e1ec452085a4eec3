package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"
)

// The monitoring state: how the last rounds went, what each gossip source
// last showed, and what operators said about each finding. It lives beside
// the audit state so that it survives restarts (an outage that began before
// a restart is still measured from the ledger's last answer).
var (
	bucketGossip     = []byte("gossip")     // source URL -> GossipRecord JSON
	bucketAlertState = []byte("alertstate") // finding id (8 bytes BE) -> AlertState JSON
	keyRound         = []byte("round")      // in bucketMeta: RoundRecord JSON
)

func init() { allBuckets = append(allBuckets, bucketGossip, bucketAlertState) }

// RoundRecord says how the auditor's rounds against the ledger went.
type RoundRecord struct {
	// LastAttempt is when the latest round ended; LastSuccess when the latest
	// round ended in which the ledger served a checkpoint that verified and
	// the auditor caught up to it. Zero when there was none.
	LastAttempt time.Time `json:"last_attempt"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastAnswer is the last time the ledger answered usefully: a checkpoint
	// that verified, or entries that a catch-up step committed.
	LastAnswer time.Time `json:"last_answer,omitzero"`
	// LedgerUp reports whether the latest round got a verified, current
	// checkpoint from the ledger and everything it asked for after it.
	LedgerUp bool `json:"ledger_up"`
	// LastError is the latest round's error, empty when it succeeded. At
	// most 512 bytes.
	LastError string `json:"last_error,omitempty"`
	// CheckpointSize is the size of the latest checkpoint that verified.
	CheckpointSize uint64 `json:"checkpoint_size"`
}

// MaxRoundError is the longest RoundRecord.LastError stored.
const MaxRoundError = 512

// Round returns the round record; ok is false before the first round.
func (t *Tx) Round() (r RoundRecord, ok bool, err error) {
	b := t.tx.Bucket(bucketMeta).Get(keyRound)
	if b == nil {
		return RoundRecord{}, false, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return RoundRecord{}, false, fmt.Errorf("%w: round: %v", ErrCorrupt, err)
	}
	return r, true, nil
}

// SetRound replaces the round record, truncating LastError to MaxRoundError.
func (t *Tx) SetRound(r RoundRecord) error {
	if len(r.LastError) > MaxRoundError {
		r.LastError = r.LastError[:MaxRoundError]
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketMeta).Put(keyRound, b)
}

// GossipRecord is what the auditor last learned from one witness or peer.
type GossipRecord struct {
	Source string `json:"source"`
	// Witness is true for a witness, false for a peer auditor.
	Witness bool `json:"witness"`
	// Size is the size of the last checkpoint the source served that carried
	// a valid log signature, and Seen when the auditor read it (zero if
	// never).
	Size uint64    `json:"size"`
	Seen time.Time `json:"seen,omitzero"`
	// Tried is when the auditor last asked; Error the latest failure, empty
	// when the latest read succeeded (at most 512 bytes).
	Tried time.Time `json:"tried"`
	Error string    `json:"error,omitempty"`
	// Ahead is the oldest checkpoint (the note as served, at most
	// MaxAheadNote bytes) the source held that the ledger's tiles did not
	// support yet, and AheadSince when the auditor first read it; empty once
	// the ledger supports its size and agrees with it.
	Ahead      string    `json:"ahead,omitempty"`
	AheadSince time.Time `json:"ahead_since,omitzero"`
}

// MaxAheadNote bounds GossipRecord.Ahead: checkpoint.MaxNoteSize, a
// checkpoint note with its signatures.
const MaxAheadNote = 64 << 10

// PutGossip replaces the record of r.Source (at most 2 KiB of URL).
func (t *Tx) PutGossip(r GossipRecord) error {
	if len(r.Source) == 0 || len(r.Source) > 2048 {
		return fmt.Errorf("gossip source URL of %d bytes", len(r.Source))
	}
	if len(r.Error) > MaxRoundError {
		r.Error = r.Error[:MaxRoundError]
	}
	if len(r.Ahead) > MaxAheadNote {
		return fmt.Errorf("gossip checkpoint of %d bytes", len(r.Ahead))
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketGossip).Put([]byte(r.Source), b)
}

// Gossip returns the record of every source, sorted by source URL.
func (t *Tx) Gossip() ([]GossipRecord, error) {
	var out []GossipRecord
	err := t.tx.Bucket(bucketGossip).ForEach(func(_, v []byte) error {
		var r GossipRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%w: gossip: %v", ErrCorrupt, err)
		}
		out = append(out, r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out, err
}

// Alert states: a finding is open until an operator acknowledges it (seen,
// being handled) or resolves it (handled, with a note saying how).
const (
	AlertOpen         = ""
	AlertAcknowledged = "acknowledged"
	AlertResolved     = "resolved"
)

// MaxAlertNote is the longest note an operator may attach, in bytes.
const MaxAlertNote = 2000

// AlertEvent is one change of an alert's state.
type AlertEvent struct {
	State string    `json:"state"`
	Note  string    `json:"note,omitempty"`
	Time  time.Time `json:"time"`
}

// AlertState is an alert's current state and the history of how it got
// there, oldest first (at most 100 events are kept).
type AlertState struct {
	State   string       `json:"state"`
	History []AlertEvent `json:"history,omitempty"`
}

const maxAlertEvents = 100

// ErrNoFinding means no finding has the given id.
var ErrNoFinding = errors.New("no such finding")

// SetAlertState records that finding id moved to state (AlertAcknowledged,
// AlertResolved, or AlertOpen to reopen it) with note, at time now. It
// fails with ErrNoFinding for an unknown id, and for an unknown state or a
// note longer than MaxAlertNote or not UTF-8.
func (t *Tx) SetAlertState(id uint64, state, note string, now time.Time) error {
	switch state {
	case AlertOpen, AlertAcknowledged, AlertResolved:
	default:
		return fmt.Errorf("unknown alert state %q", state)
	}
	if len(note) > MaxAlertNote {
		return fmt.Errorf("note of %d bytes; at most %d", len(note), MaxAlertNote)
	}
	if !utf8.ValidString(note) {
		return errors.New("the note is not UTF-8 text")
	}
	if t.tx.Bucket(bucketFindings).Get(u64(id)) == nil {
		return ErrNoFinding
	}
	s, err := t.AlertState(id)
	if err != nil {
		return err
	}
	s.State = state
	s.History = append(s.History, AlertEvent{State: state, Note: note, Time: now.UTC()})
	if len(s.History) > maxAlertEvents {
		s.History = s.History[len(s.History)-maxAlertEvents:]
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketAlertState).Put(u64(id), b)
}

// AlertState returns the state of finding id: AlertOpen with no history
// when no operator touched it.
func (t *Tx) AlertState(id uint64) (AlertState, error) {
	var s AlertState
	v := t.tx.Bucket(bucketAlertState).Get(u64(id))
	if v == nil {
		return s, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return s, fmt.Errorf("%w: alert state: %v", ErrCorrupt, err)
	}
	return s, nil
}
