package dashboard_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
)

// BenchmarkSearchBySHA256 measures one search by metadata SHA-256 over
// 100,000 stored releases (100 repositories of 1,000): search reads the
// whole release index. Run:
//
//	go test -run '^$' -bench SearchBySHA256 -benchtime 10x ./audit/dashboard/
func BenchmarkSearchBySHA256(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var last string
	for r := 0; r < 100; r++ {
		repo := fmt.Sprintf("example.com/repo-%03d", r)
		err := db.Update(func(tx *store.Tx) error {
			if err := tx.PutRepo(repo, &replay.RepoState{Root: []byte("{}"), Versions: map[string]uint64{"targets": 1000}}); err != nil {
				return err
			}
			for v := uint64(1); v <= 1000; v++ {
				sum := sha256.Sum256([]byte(fmt.Sprint(repo, v)))
				last = hex.EncodeToString(sum[:])
				rel := &replay.Release{Index: uint64(r)*1000 + v, Repo: repo, Role: "targets", Version: v, SHA256: last,
					Length: 900, Seen: time.Unix(1e9, 0), Changed: []string{fmt.Sprintf("+fw-%d.bin", v)}, Valid: true}
				if err := tx.PutRelease(rel); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	h := dashboard.New(db, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/search?q="+last, nil))
		if w.Code != 200 {
			b.Fatalf("search: %d", w.Code)
		}
	}
}
