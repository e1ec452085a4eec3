package witness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// grow advances origin in s from its latest state by steps of one.
func growStore(t *testing.T, s *Store, origin string, to uint64) {
	t.Helper()
	for cur := s.Latest(origin); cur.Size < to; cur = s.Latest(origin) {
		if err := s.Update(context.Background(), origin, cur, testState(origin, cur.Size+1), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func checkState(t *testing.T, s *Store, origin string, size uint64) {
	t.Helper()
	want := testState(origin, size)
	if got := s.Latest(origin); got.Size != size || got.Hash != want.Hash || !bytes.Equal(got.Note, want.Note) {
		t.Fatalf("%s: state at size %d, want %d", origin, got.Size, size)
	}
}

// TestStoreReopenCutsTornTail: garbage after the last record (a crash in
// an unanswered write) is cut on open; the state before it stays, and the
// store goes on appending after it.
func TestStoreReopenCutsTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	s, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	growStore(t, s, "a", 5)
	s.Close()
	good, _ := os.ReadFile(path)
	_, valid, err := parseJournal(good)
	if err != nil {
		t.Fatal(err)
	}
	torn := bytes.Clone(good) // the records, then the zeros the file was grown by
	copy(torn[valid:], appendStateRecord(nil, "a", testState("a", 6))[:30])
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = OpenStore(path, nil); err != nil {
		t.Fatal(err)
	}
	checkState(t, s, "a", 5)
	growStore(t, s, "a", 7)
	s.Close()
	if s, err = OpenStore(path, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkState(t, s, "a", 7)
}

// TestStoreCompaction: a journal compacted many times over holds only the
// latest state, and every state and record survives a reopen.
func TestStoreCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	s, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.compactSlack = 0
	growStore(t, s, "a", 300)
	growStore(t, s, "b", 10)
	if err := s.Record(context.Background(), testMisbehaviour("a", KindUnproven, 1)); err != nil {
		t.Fatal(err)
	}
	growStore(t, s, "b", 20)
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, valid, err := parseJournal(data); err != nil || valid > 4*(s.live+int64(len(journalMagic))) {
		t.Errorf("journal of %d bytes of records after compaction (%v), want at most %d", valid, err, 4*(s.live+int64(len(journalMagic))))
	}
	if s, err = OpenStore(path, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkState(t, s, "a", 300)
	checkState(t, s, "b", 20)
	if ms, _ := s.Misbehaviour("a", 10); len(ms) != 1 || ms[0] != testMisbehaviour("a", KindUnproven, 1) {
		t.Errorf("misbehaviour after compaction: %+v", ms)
	}
}

// writeBoltStore writes a store of the earlier bbolt format.
func writeBoltStore(t *testing.T, path string, states map[string]State, ms []Misbehaviour) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		logs, _ := tx.CreateBucket(bucketLogs)
		mis, _ := tx.CreateBucket(bucketMisbehaviour)
		for origin, st := range states {
			v, _ := json.Marshal(storedState{Size: st.Size, Hash: base64.StdEncoding.EncodeToString(st.Hash[:]), Note: string(st.Note)})
			if err := logs.Put([]byte(origin), v); err != nil {
				return err
			}
		}
		for _, m := range ms {
			v, _ := json.Marshal(m)
			if err := mis.Put([]byte(misbehaviourKey(m)), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStoreMigratesBbolt: a witness directory of an earlier version (bbolt
// state) opens with every log's state and every misbehaviour record, as a
// journal from then on.
func TestStoreMigratesBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	states := map[string]State{"a": testState("a", 7), "b": testState("b", 1<<40)}
	ms := []Misbehaviour{testMisbehaviour("a", KindFork, 1), testMisbehaviour("a", KindUnproven, 2), testMisbehaviour("b", KindFork, 3)}
	writeBoltStore(t, path, states, ms)
	s, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated := func(s *Store, aSize uint64) {
		t.Helper()
		checkState(t, s, "a", aSize)
		checkState(t, s, "b", 1<<40)
		if got, _ := s.Misbehaviour("", 10); len(got) != len(ms) {
			t.Fatalf("%d misbehaviour records, want %d", len(got), len(ms))
		}
		if got, _ := s.Misbehaviour("a", 10); len(got) != 2 || got[0].Origin != "a" || got[1].Origin != "a" {
			t.Errorf("records of a: %+v", got)
		}
	}
	checkMigrated(s, 7)
	growStore(t, s, "a", 8)
	s.Close()
	if data, _ := os.ReadFile(path); !bytes.HasPrefix(data, []byte(journalMagic)) {
		t.Fatal("the state is not a journal after the migration")
	}
	if s, err = OpenStore(path, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkMigrated(s, 8)
}

// TestStoreRefusesCorruptJournal: a journal damaged before its tail stops
// the witness from starting, saying so, rather than rolling it back.
func TestStoreRefusesCorruptJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	data, _ := testJournal(t, 60000)
	data[len(journalMagic)+10] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var ce *JournalCorruptError
	if _, err := OpenStore(path, nil); !errors.As(err, &ce) {
		t.Fatalf("OpenStore on a corrupt journal: %v", err)
	}
	if err := os.WriteFile(path, []byte("something else entirely"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(path, nil); !errors.Is(err, errNotJournal) {
		t.Fatalf("OpenStore on another file: %v", err)
	}
}

const crashChildEnv = "SHIPLOG_WITNESS_STORE_CRASH_CHILD"

// crashLogs are the logs the crash child grows at once.
var crashLogs = []string{"example.com/a", "example.com/b", "example.com/c", "example.com/d"}

// TestAttackStoreSIGKILLRollback runs a child process that grows four logs
// in the store as fast as it can (concurrent updates, so commits are
// grouped, and compaction after every few kilobytes, so kills land in it
// too) and prints each size once Update acknowledged it; the parent kills
// it with SIGKILL after a random number of acknowledgements, 100 times
// over. After each kill the reopened store must hold, for every log, at
// least the largest size acknowledged, the exact state of that size, and
// never less than after the previous kill.
func TestAttackStoreSIGKILLRollback(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	rng := rand.New(rand.NewPCG(3, 4))
	floor := map[string]uint64{}
	cycles := 100
	if testing.Short() {
		cycles = 10
	}
	for cycle := range cycles {
		acked := runCrashChild(t, dir, 1+rng.IntN(200))
		s, err := OpenStore(path, nil)
		if err != nil {
			t.Fatalf("cycle %d: reopen after SIGKILL: %v", cycle, err)
		}
		for _, origin := range crashLogs {
			got := s.Latest(origin).Size
			if got < acked[origin] || got < floor[origin] {
				t.Fatalf("ROLLBACK in cycle %d: %s at size %d after acknowledging %d (before this cycle: %d)", cycle, origin, got, acked[origin], floor[origin])
			}
			checkState(t, s, origin, got)
			floor[origin] = got
		}
		s.Close()
	}
	t.Logf("%d SIGKILLs; final sizes %v", cycles, floor)
}

// runCrashChild starts the child on dir, reads its acknowledgements until
// n, kills it with SIGKILL and returns the largest size acknowledged per
// log.
func runCrashChild(t *testing.T, dir string, n int) map[string]uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttackStoreSIGKILLRollback$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{}
	sc := bufio.NewScanner(out)
	for i := 0; i < n && sc.Scan(); i++ {
		origin, size, ok := strings.Cut(sc.Text(), " ")
		v, err := strconv.ParseUint(size, 10, 64)
		if !ok || err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[origin] = max(acked[origin], v)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(acked) == 0 {
		t.Fatalf("the child acknowledged nothing:\n%s", stderr.String())
	}
	return acked
}

// crashChild grows crashLogs in the store in dir until killed, printing
// "origin size" after each acknowledged update.
func crashChild(dir string) {
	s, err := OpenStore(filepath.Join(dir, StateFile), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s.compactSlack = 4 << 10
	var mu sync.Mutex
	for _, origin := range crashLogs {
		go func() {
			for cur := s.Latest(origin); ; {
				next := testState(origin, cur.Size+1)
				if err := s.Update(context.Background(), origin, cur, next, nil); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%s %d\n", origin, next.Size)
				mu.Unlock()
				cur = next
			}
		}()
	}
	time.Sleep(time.Hour) // until killed
}
