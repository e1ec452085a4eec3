package harness

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
	ledger "github.com/shiplog/shiplog/log"
)

// CheckIndexAttestations checks an empty IndexStore's contract for
// sign-off attestations: records of both kinds, out of order and twice,
// then Attestations in log order per (repository, subject), filtered by
// key and by index, capped with "more", and Leaf and Metadata finding the
// attestation entries and envelopes.
func CheckIndexAttestations(t *testing.T, x ledger.IndexStore) {
	t.Helper()
	subject, other := sha256.Sum256([]byte("target")), sha256.Sum256([]byte("other target"))
	att := func(idx uint64, repo string, subj [32]byte, key byte, verdict string) ledger.Record {
		a := signoff.Entry{Repo: repo, Subject: subj, Verdict: verdict, Key: signoff.KeyID{key},
			SHA256: sha256.Sum256([]byte(fmt.Sprintf("envelope %d", idx))), Length: 100 + idx}
		return ledger.Record{Index: idx, Attestation: &a}
	}
	root, err := entry.New("r", "root", 1, []byte("root"))
	if err != nil {
		t.Fatal(err)
	}
	recs := []ledger.Record{
		{Index: 0, Entry: root},
		att(1, "r", subject, 1, signoff.Reproduced),
		att(2, "r", other, 1, signoff.Reproduced),
		att(3, "r", subject, 2, signoff.Mismatch),
		att(4, "r2", subject, 1, signoff.Reviewed),
		att(5, "r", subject, 3, signoff.Reviewed),
		att(6, "r", subject, 1, signoff.Reviewed),
	}
	for _, i := range []int{6, 2, 0, 4, 1, 5, 3, 1} {
		if err := x.Record(recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if wm, err := x.Watermark(); err != nil || wm != uint64(len(recs)) {
		t.Errorf("Watermark = %d, %v; want %d", wm, err, len(recs))
	}
	indexes := func(rs []ledger.AttestationRecord) []uint64 {
		var out []uint64
		for _, r := range rs {
			out = append(out, r.Index)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		repo  string
		subj  [32]byte
		keys  []signoff.KeyID
		below uint64
		max   int
		want  []uint64
		more  bool
	}{
		{"all", "r", subject, nil, 100, 64, []uint64{1, 3, 5, 6}, false},
		{"another subject", "r", other, nil, 100, 64, []uint64{2}, false},
		{"another repository", "r2", subject, nil, 100, 64, []uint64{4}, false},
		{"below the checkpoint", "r", subject, nil, 5, 64, []uint64{1, 3}, false},
		{"by key", "r", subject, []signoff.KeyID{{3}, {1}}, 100, 64, []uint64{1, 5, 6}, false},
		{"capped", "r", subject, nil, 100, 2, []uint64{1, 3}, true},
		{"capped exactly", "r", subject, nil, 100, 4, []uint64{1, 3, 5, 6}, false},
		{"nothing", "nobody", subject, nil, 100, 64, nil, false},
	} {
		got, more, err := x.Attestations(tc.repo, tc.subj, tc.keys, tc.below, tc.max)
		if err != nil || fmt.Sprint(indexes(got)) != fmt.Sprint(tc.want) || more != tc.more {
			t.Errorf("%s: Attestations = %v, more %v, %v; want %v, more %v", tc.name, indexes(got), more, err, tc.want, tc.more)
		}
		for _, r := range got {
			if want := recs[r.Index].Attestation; r.Entry != *want {
				t.Errorf("%s: record %d = %+v, want %+v", tc.name, r.Index, r.Entry, *want)
			}
		}
	}
	a := recs[3].Attestation
	if idx, ok, err := x.Leaf(a.LeafHash()); err != nil || !ok || idx != 3 {
		t.Errorf("Leaf of an attestation entry = %d, %v, %v", idx, ok, err)
	}
	if idx, ok, err := x.Metadata(a.SHA256); err != nil || !ok || idx != 3 {
		t.Errorf("Metadata of an envelope = %d, %v, %v", idx, ok, err)
	}
	if _, ok, err := x.Role("r", "root"); err != nil || !ok {
		t.Errorf("the release beside the attestations: %v, %v", ok, err)
	}
}
