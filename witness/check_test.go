package witness

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/evidencetest"
)

func TestCheck(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	for i := 0; i < 8; i++ {
		l.Append([]byte{byte(i)})
	}
	fork := evidencetest.NewLogWithKey(l, l.Origin)
	for i := 0; i < 8; i++ {
		fork.Append([]byte{byte(i), 1})
	}
	at := func(size uint64) State { return State{Size: size, Hash: l.Body(size).Hash} }
	badProof := l.Consistency(3, 8)
	badProof[1][0] ^= 1
	var conflict *ConflictError
	tests := []struct {
		name   string
		latest State
		old    uint64
		proof  [][sha256.Size]byte
		cp     uint64
		forked bool
		want   error
	}{
		{"first checkpoint", initialState(), 0, nil, 5, false, nil},
		{"empty tree", initialState(), 0, nil, 0, false, nil},
		{"extension", at(3), 3, l.Consistency(3, 8), 8, false, nil},
		{"same checkpoint", at(5), 5, nil, 5, false, nil},
		{"old above size", at(5), 6, nil, 5, false, ErrBadRequest},
		{"rollback: old below latest", at(5), 3, l.Consistency(3, 8), 8, false, conflict},
		{"old above latest", at(3), 5, l.Consistency(5, 8), 8, false, conflict},
		{"stale checkpoint", at(5), 0, nil, 3, false, conflict},
		{"fork: same size other root", at(5), 5, nil, 5, true, ErrFork},
		{"fork: extension of another tree", at(3), 3, fork.Consistency(3, 8), 8, true, ErrBadProof},
		{"bad proof", at(3), 3, badProof, 8, false, ErrBadProof},
		{"truncated proof", at(3), 3, l.Consistency(3, 8)[1:], 8, false, ErrBadProof},
		{"proof with old 0", initialState(), 0, l.Consistency(3, 8), 8, false, ErrBadProof},
		{"proof between equal sizes", at(5), 5, l.Consistency(3, 5), 5, false, ErrBadProof},
		{"empty tree, wrong root", initialState(), 0, nil, 0, true, ErrFork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := l.Body(tt.cp)
			if tt.forked {
				cp = fork.Body(tt.cp)
				if tt.cp == 0 {
					cp.Hash[0] ^= 1
				}
			}
			err := Check(tt.latest, tt.old, tt.proof, cp)
			switch want := tt.want.(type) {
			case nil:
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
			case *ConflictError:
				var ce *ConflictError
				if !errors.As(err, &ce) || ce.Size != tt.latest.Size {
					t.Errorf("Check = %v, want conflict at %d", err, tt.latest.Size)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("Check = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter()
	now := time.Unix(0, 0)
	for i := 0; i < 10; i++ {
		if ok, _ := l.allow("a", 24, now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := l.allow("a", 24, now)
	if ok || retry < 59*time.Minute || retry > 62*time.Minute {
		t.Errorf("over quota: allow = %v, retry after %v, want about an hour", ok, retry)
	}
	if ok, _ := l.allow("b", 24, now); !ok {
		t.Error("quota shared between logs")
	}
	if ok, _ := l.allow("a", 24, now.Add(time.Hour)); !ok {
		t.Error("quota not refilled after an hour")
	}
	for i := 0; i < 1000; i++ {
		if ok, _ := l.allow("c", 0, now); !ok {
			t.Fatal("unlimited log refused")
		}
	}
}
