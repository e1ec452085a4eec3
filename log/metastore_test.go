package log

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testMetadata returns distinct metadata-sized bytes for (round, writer, n).
func testMetadata(round, writer, n int) []byte {
	seed := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%d", round, writer, n))
	b := make([]byte, 0, 300+int(seed[0]))
	for len(b) < cap(b) {
		b = append(b, seed[:]...)
		seed = sha256.Sum256(seed[:])
	}
	return b[:cap(b)]
}

func mustGet(t *testing.T, s *MetadataStore, data []byte) {
	t.Helper()
	got, err := s.Get(sha256.Sum256(data))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Fatal("Get returned other bytes")
	}
}

func TestMetadataStoreConcurrentPutsAreReadableAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := NewMetadataStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 50; n++ {
				data := testMetadata(0, w, n)
				sum, err := s.Put(data)
				if err != nil || sum != sha256.Sum256(data) {
					t.Error(sum, err)
					return
				}
				if _, err := s.Put(data); err != nil { // again: no-op
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for w := 0; w < 16; w++ {
		mustGet(t, s, testMetadata(0, w, 0))
	}
	if _, err := s.Get(sha256.Sum256([]byte("absent"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
	size := fileSize(t, filepath.Join(dir, PackFile))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put([]byte("after close")); err == nil {
		t.Fatal("Put after Close succeeded")
	}
	s, err = NewMetadataStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for w := 0; w < 16; w++ {
		for n := 0; n < 50; n++ {
			mustGet(t, s, testMetadata(0, w, n))
		}
	}
	if got := fileSize(t, filepath.Join(dir, PackFile)); got != size {
		t.Fatalf("pack grew from %d to %d bytes on reopen: duplicates were stored", size, got)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A crash in the middle of writing a batch leaves a torn record at the end
// of the pack (never acknowledged): opening cuts it off and keeps the rest.
func TestMetadataStoreCutsOffTornBatch(t *testing.T) {
	dir := t.TempDir()
	s, err := NewMetadataStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 10; n++ {
		if _, err := s.Put(testMetadata(0, 0, n)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	good := fileSize(t, filepath.Join(dir, PackFile))
	torn := testMetadata(0, 1, 0)
	var rec []byte
	rec = append(rec, packMagic...)
	rec = binary.BigEndian.AppendUint32(rec, uint32(len(torn)))
	sum := sha256.Sum256(torn)
	rec = append(rec, sum[:]...)
	rec = append(rec, torn[:len(torn)/2]...)
	for _, tail := range [][]byte{rec, rec[:10], []byte("garbage that is no record at all, longer than a header")} {
		f, err := os.OpenFile(filepath.Join(dir, PackFile), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(tail)
		f.Close()
		s, err := NewMetadataStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fileSize(t, filepath.Join(dir, PackFile)); got != good {
			t.Fatalf("pack is %d bytes after recovery, want %d", got, good)
		}
		for n := 0; n < 10; n++ {
			mustGet(t, s, testMetadata(0, 0, n))
		}
		if _, err := s.Get(sum); !errors.Is(err, ErrNotFound) {
			t.Fatalf("torn record: %v", err)
		}
		s.Close()
	}
	// A whole record whose bytes do not match its hash is cut off too.
	bad := append([]byte(nil), rec[:recordHeaderSize]...)
	bad = append(bad, testMetadata(0, 2, 0)[:len(torn)]...)
	f, _ := os.OpenFile(filepath.Join(dir, PackFile), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(bad)
	f.Close()
	s, err = NewMetadataStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := fileSize(t, filepath.Join(dir, PackFile)); got != good {
		t.Fatalf("pack is %d bytes after recovery, want %d", got, good)
	}
	if _, err := s.Put(torn); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, torn)
}

// The index file is advisory: a damaged or missing one is rebuilt from the
// pack.
func TestMetadataStoreRebuildsDamagedIndexFile(t *testing.T) {
	for name, damage := range map[string]func(p string) error{
		"missing":   os.Remove,
		"zeroed":    func(p string) error { return os.WriteFile(p, make([]byte, 5*idxRecordSize), 0o644) },
		"truncated": func(p string) error { return os.Truncate(p, 3*idxRecordSize+7) },
		"flipped": func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[2*idxRecordSize+9] ^= 1
			return os.WriteFile(p, b, 0o644)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewMetadataStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 8; n++ {
				if _, err := s.Put(testMetadata(1, 0, n)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			if err := damage(filepath.Join(dir, PackIndexFile)); err != nil {
				t.Fatal(err)
			}
			s, err = NewMetadataStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 8; n++ {
				mustGet(t, s, testMetadata(1, 0, n))
			}
			s.Close()
			if got := fileSize(t, filepath.Join(dir, PackIndexFile)); got != 8*idxRecordSize {
				t.Fatalf("index file is %d bytes after recovery, want %d", got, 8*idxRecordSize)
			}
		})
	}
}

// Two hashes with the same 8-byte prefix (an attacker can find such a pair
// with about 2^32 work) are told apart by the full hash.
func TestMetadataStorePrefixCollisionIsNotConfused(t *testing.T) {
	s, err := NewMetadataStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := testMetadata(2, 0, 0)
	sum, err := s.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	other := sum
	other[31] ^= 1
	if _, err := s.Get(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a hash sharing the prefix: %v", err)
	}
	s.mu.Lock()
	s.insert(other, 0) // as if a colliding record were stored at 0
	s.mu.Unlock()
	if _, err := s.Get(other); err == nil {
		t.Fatal("a record whose header names another hash was returned")
	}
	mustGet(t, s, data)
}

func TestMetadataStoreReadsEarlierLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := NewMetadataStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := testMetadata(3, 0, 0)
	p := s.Path(sha256.Sum256(data))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, data)
	if err := os.WriteFile(p, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(sha256.Sum256(data)); err == nil {
		t.Fatal("a file that does not match its hash was returned")
	}
}

// crashChildEnv makes the test binary a child that puts metadata into the
// store named by its value from several goroutines, printing "round writer
// n" after each acknowledged Put, until it is killed.
const crashChildEnv = "SHIPLOG_TEST_METASTORE_CRASH_DIR"

// MetadataCrashChild runs the crash test's child and reports true when the
// test binary was started as one (called from TestMain).
func MetadataCrashChild() bool {
	dir := os.Getenv(crashChildEnv)
	if dir != "" {
		crashChild(dir)
	}
	return dir != ""
}

func crashChild(dir string) {
	round, _ := strconv.Atoi(os.Getenv(crashChildEnv + "_ROUND"))
	s, err := NewMetadataStore(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if _, err := s.Put(testMetadata(round, w, n)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d %d\n", round, w, n)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// SIGKILL while many Puts are in flight — between a batch's write and its
// fsync, and between the fsync and the acknowledgements — loses no
// acknowledged record, and the store opens and takes new records after.
func TestMetadataStoreSIGKILLLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	var acked [][3]int
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", crashChildEnv, round))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for got := 0; got < 300+100*round && sc.Scan(); got++ {
			var a [3]int
			if _, err := fmt.Sscanf(sc.Text(), "%d %d %d", &a[0], &a[1], &a[2]); err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			acked = append(acked, a)
		}
		cmd.Process.Kill() // SIGKILL with Puts in flight
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Fatalf("child: %s", stderr.String())
		}
		s, err := NewMetadataStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acked {
			mustGet(t, s, testMetadata(a[0], a[1], a[2]))
		}
		s.Close()
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d acknowledged Puts", len(acked))
	}
}

// FuzzMetadataStoreOpen opens a store whose pack and index files hold
// arbitrary bytes: opening never panics, and whatever it then returns
// matches the hash it was asked for.
func FuzzMetadataStoreOpen(f *testing.F) {
	dir := f.TempDir()
	s, err := NewMetadataStore(dir)
	if err != nil {
		f.Fatal(err)
	}
	for n := 0; n < 3; n++ {
		s.Put(testMetadata(4, 0, n))
	}
	s.Close()
	pack, _ := os.ReadFile(filepath.Join(dir, PackFile))
	idx, _ := os.ReadFile(filepath.Join(dir, PackIndexFile))
	f.Add(pack, idx)
	f.Add(pack[:len(pack)-5], idx[:idxRecordSize])
	f.Add([]byte(packMagic+"\xff\xff\xff\xff"), []byte{})
	f.Fuzz(func(t *testing.T, pack, idx []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, PackFile), pack, 0o644)
		os.WriteFile(filepath.Join(dir, PackIndexFile), idx, 0o644)
		s, err := NewMetadataStore(dir)
		if err != nil {
			return
		}
		defer s.Close()
		for n := 0; n < 3; n++ {
			sum := sha256.Sum256(testMetadata(4, 0, n))
			if b, err := s.Get(sum); err == nil && sha256.Sum256(b) != sum {
				t.Fatal("Get returned bytes that do not match the hash")
			}
		}
		if _, err := s.Put([]byte("new")); err != nil {
			t.Fatal(err)
		}
	})
}
