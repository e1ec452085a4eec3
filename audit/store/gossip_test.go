package store

import (
	"strings"
	"testing"
	"time"
)

// TestGossipKeepsTheCheckpointAhead: the checkpoint a source held ahead of
// the ledger, and since when, survive in the state (a restarted or --once
// auditor still counts the stale-view grace from the first sighting); one
// larger than a checkpoint note can be is refused.
func TestGossipKeepsTheCheckpointAhead(t *testing.T) {
	db := open(t)
	since := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	want := GossipRecord{Source: "http://w1.example", Witness: true, Size: 7, Seen: since, Tried: since,
		Ahead: "example.com/ledger\n7\nhash\n\n— sig\n", AheadSince: since}
	if err := db.Update(func(tx *Tx) error { return tx.PutGossip(want) }); err != nil {
		t.Fatal(err)
	}
	var got []GossipRecord
	if err := db.View(func(tx *Tx) (err error) { got, err = tx.Gossip(); return err }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Ahead != want.Ahead || !got[0].AheadSince.Equal(since) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	big := want
	big.Ahead = strings.Repeat("x", MaxAheadNote+1)
	if err := db.Update(func(tx *Tx) error { return tx.PutGossip(big) }); err == nil {
		t.Error("a checkpoint of MaxAheadNote+1 bytes was stored")
	}
}
