package witness

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"
)

// testState is a deterministic state of origin at size n.
func testState(origin string, n uint64) State {
	return State{Size: n, Hash: sha256.Sum256(fmt.Appendf(nil, "%s %d", origin, n)), Note: fmt.Appendf(nil, "%s\n%d\nnote\n", origin, n)}
}

func testMisbehaviour(origin, kind string, i int) Misbehaviour {
	return Misbehaviour{Origin: origin, Kind: kind, Received: time.Unix(int64(i), 0).UTC(), OldSize: 1, NewSize: 2, Evidence: fmt.Sprintf("evidence %d\n", i)}
}

// testJournal encodes n states of a few logs and a misbehaviour record.
func testJournal(t testing.TB, n int) ([]byte, []journalRecord) {
	b := []byte(journalMagic)
	var want []journalRecord
	for i := range n {
		origin := fmt.Sprintf("example.com/log%d", i%3)
		st := testState(origin, uint64(i))
		b = appendStateRecord(b, origin, st)
		want = append(want, journalRecord{Origin: origin, State: st})
		if i == 2 {
			m := testMisbehaviour(origin, KindFork, i)
			var err error
			if b, err = appendMisbehaviourRecord(b, m); err != nil {
				t.Fatal(err)
			}
			want = append(want, journalRecord{Origin: origin, Misbehaviour: &m})
		}
	}
	return b, want
}

func sameRecords(a, b []journalRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Origin != y.Origin || x.State.Size != y.State.Size || x.State.Hash != y.State.Hash || !bytes.Equal(x.State.Note, y.State.Note) {
			return false
		}
		if (x.Misbehaviour == nil) != (y.Misbehaviour == nil) || x.Misbehaviour != nil && *x.Misbehaviour != *y.Misbehaviour {
			return false
		}
	}
	return true
}

func TestJournalRoundTrip(t *testing.T) {
	data, want := testJournal(t, 10)
	got, valid, err := parseJournal(data)
	if err != nil || valid != int64(len(data)) {
		t.Fatalf("parseJournal: valid %d of %d, %v", valid, len(data), err)
	}
	if !sameRecords(got, want) {
		t.Errorf("records differ:\n got %+v\nwant %+v", got, want)
	}
	if _, _, err := parseJournal([]byte("not a journal")); !errors.Is(err, errNotJournal) {
		t.Errorf("other file: %v", err)
	}
}

// TestJournalTornTailIsCut: a crash in the middle of the last write leaves
// any prefix of it, or the prefix then zeros (a file grown but its blocks
// not written); replay keeps exactly the records wholly before the damage.
func TestJournalTornTailIsCut(t *testing.T) {
	data, want := testJournal(t, 6)
	ends := []int{len(journalMagic)} // record boundaries
	for _, r := range want {
		var n int
		if r.Misbehaviour != nil {
			b, _ := appendMisbehaviourRecord(nil, *r.Misbehaviour)
			n = len(b)
		} else {
			n = len(appendStateRecord(nil, r.Origin, r.State))
		}
		ends = append(ends, ends[len(ends)-1]+n)
	}
	for cut := len(journalMagic); cut < len(data); cut++ {
		whole := 0 // records wholly before cut
		for whole+1 < len(ends) && ends[whole+1] <= cut {
			whole++
		}
		for _, tail := range [][]byte{nil, make([]byte, 100)} {
			torn := append(bytes.Clone(data[:cut]), tail...)
			got, valid, err := parseJournal(torn)
			if err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			if !sameRecords(got, want[:whole]) || valid != int64(ends[whole]) {
				t.Fatalf("cut at %d (+%d zeros): %d records, valid %d; want %d, %d", cut, len(tail), len(got), valid, whole, ends[whole])
			}
		}
	}
	// A flipped bit in the last record is a torn write too.
	flipped := bytes.Clone(data)
	flipped[len(flipped)-1] ^= 1
	if got, _, err := parseJournal(flipped); err != nil || !sameRecords(got, want[:len(want)-1]) {
		t.Errorf("flipped last byte: %d records, %v", len(got), err)
	}
}

// TestAttackJournalDamageBeforeTheTailRefused: damage further from the end
// than one write can reach is not a crash; cutting there would roll the
// witness back, so the journal is refused.
func TestAttackJournalDamageBeforeTheTailRefused(t *testing.T) {
	data, _ := testJournal(t, 60000) // several MiB
	if len(data) < journalGrowMax+1<<20 {
		t.Fatalf("test journal too small: %d bytes", len(data))
	}
	damaged := bytes.Clone(data)
	damaged[len(journalMagic)+20] ^= 1
	var ce *JournalCorruptError
	if _, _, err := parseJournal(damaged); !errors.As(err, &ce) {
		t.Fatalf("damage at the start: %v, want *JournalCorruptError", err)
	}
	// A cut far from the end: the same.
	if _, _, err := parseJournal(append(bytes.Clone(data[:len(journalMagic)+20]), data[len(journalMagic)+40:]...)); !errors.As(err, &ce) {
		t.Fatalf("bytes removed at the start: %v", err)
	}
}

// TestJournalGrownZerosAreFreeSpace: the zeros the file was grown by end
// the records; garbage in them within a growth's reach (a growth a crash
// cut short) is a torn tail, and past it is damage.
func TestJournalGrownZerosAreFreeSpace(t *testing.T) {
	data, want := testJournal(t, 5)
	grown := append(bytes.Clone(data), make([]byte, journalGrowMax+1000)...)
	if got, valid, err := parseJournal(grown); err != nil || valid != int64(len(data)) || !sameRecords(got, want) {
		t.Fatalf("grown journal: %d records, valid %d of %d, %v", len(got), valid, len(data), err)
	}
	near := bytes.Clone(grown)
	near[len(data)+journalGrowMax-1] = 1
	if got, _, err := parseJournal(near); err != nil || !sameRecords(got, want) {
		t.Fatalf("garbage within a growth's reach: %d records, %v", len(got), err)
	}
	far := bytes.Clone(grown)
	far[len(data)+journalGrowMax] = 1
	var ce *JournalCorruptError
	if _, _, err := parseJournal(far); !errors.As(err, &ce) {
		t.Fatalf("garbage past a growth's reach: %v", err)
	}
}

// TestAttackJournalRollbackRecordRefused: a well-framed record that takes a
// log's size down is not something the witness writes.
func TestAttackJournalRollbackRecordRefused(t *testing.T) {
	b := []byte(journalMagic)
	b = appendStateRecord(b, "o", testState("o", 5))
	b = appendStateRecord(b, "o", testState("o", 4))
	var ce *JournalCorruptError
	if _, _, err := parseJournal(b); !errors.As(err, &ce) {
		t.Fatalf("size going down: %v", err)
	}
}

// TestJournalMalformedPayloadRefused: a frame whose checksum holds but
// whose payload does not parse was written so: refused, not cut.
func TestJournalMalformedPayloadRefused(t *testing.T) {
	for name, payload := range map[string][]byte{
		"unknown type":    {0x7f, 1, 2},
		"empty origin":    append([]byte{recordState, 0, 0}, make([]byte, 44)...),
		"trailing bytes":  append(appendStateRecord(nil, "o", testState("o", 1))[frameHeaderSize:], 0),
		"json not canon":  []byte("\x02{ \"origin\":\"o\",\"kind\":\"fork\",\"received\":\"1970-01-01T00:00:00Z\",\"old_size\":0,\"new_size\":0,\"evidence\":\"\"}"),
		"json extra key":  []byte("\x02{\"origin\":\"o\",\"x\":1}"),
		"short state":     {recordState, 0, 1, 'o'},
		"note past end":   noteShort(),
		"origin too long": append([]byte{recordState, 0xff, 0xff}, make([]byte, 70000)...),
	} {
		b := appendFrameHeader([]byte(journalMagic), len(payload))
		b = sealFrame(append(b, payload...), len(journalMagic)+frameHeaderSize)
		var ce *JournalCorruptError
		if _, _, err := parseJournal(b); !errors.As(err, &ce) {
			t.Errorf("%s: %v, want *JournalCorruptError", name, err)
		}
	}
}

// FuzzParseJournal: parseJournal never panics, and what it accepts is
// canonical: the records it returns encode back to exactly the valid
// prefix.
func FuzzParseJournal(f *testing.F) {
	data, _ := testJournal(f, 5)
	f.Add(data)
	f.Add(data[:len(data)-3])
	f.Add([]byte(journalMagic))
	f.Add(append([]byte(journalMagic), 0, 0, 0, 1, 0, 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		records, valid, err := parseJournal(data)
		if err != nil {
			return
		}
		if valid < int64(len(journalMagic)) || valid > int64(len(data)) {
			t.Fatalf("valid %d of %d", valid, len(data))
		}
		b := []byte(journalMagic)
		for _, r := range records {
			if r.Misbehaviour != nil {
				if b, err = appendMisbehaviourRecord(b, *r.Misbehaviour); err != nil {
					t.Fatal(err)
				}
			} else {
				b = appendStateRecord(b, r.Origin, r.State)
			}
		}
		if !bytes.Equal(b, data[:valid]) {
			t.Fatal("records do not encode back to the valid prefix")
		}
	})
}

// noteShort is a state payload one byte shorter than its note length says.
func noteShort() []byte {
	b := appendStateRecord(nil, "o", testState("o", 1))
	return b[frameHeaderSize : len(b)-1]
}
