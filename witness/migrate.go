package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Until the journal, the store was a bbolt file at the same path: bucket
// "logs" mapped an origin to its state as JSON (storedState), bucket
// "misbehaviour" mapped origin\0kind\0sha256(evidence) to a Misbehaviour as
// JSON. OpenStore migrates such a file: it reads it whole, then writes the
// same state as a journal over it (temp file, fsync, rename, directory
// fsync), so a crash leaves either the bbolt file, migrated again on the
// next open, or the journal. The migration is one way: an older shiplog
// does not read the journal.

var (
	bucketLogs         = []byte("logs")
	bucketMisbehaviour = []byte("misbehaviour")
)

// boltMagic is bbolt's meta page magic, at byte 16 of the file in the
// machine's byte order (little-endian on every platform shiplog builds for).
const boltMagic = 0xED0CDAED

func isBoltFile(data []byte) bool {
	return len(data) >= 20 && binary.LittleEndian.Uint32(data[16:20]) == boltMagic
}

// migrateBolt reads the bbolt store at s.path into s and writes it back as
// a journal, returning the journal's content. s's maps are left empty, for
// the journal's replay.
func (s *Store) migrateBolt() ([]byte, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the bbolt state to migrate it: %w", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketLogs); b != nil {
			if err := b.ForEach(func(k, v []byte) error {
				st, err := decodeState(v)
				if err != nil {
					return fmt.Errorf("witness state of %q: %w", k, err)
				}
				if !validStateRecord(string(k), st) {
					return fmt.Errorf("witness state of %q does not fit the journal", k)
				}
				s.setCacheLocked(string(k), st)
				return nil
			}); err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketMisbehaviour); b != nil {
			return b.ForEach(func(k, v []byte) error {
				var m Misbehaviour
				if err := json.Unmarshal(v, &m); err != nil {
					return fmt.Errorf("misbehaviour record %q: %w", k, err)
				}
				s.addMisbehaviourLocked(m)
				return nil
			})
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	data, err := s.writeSnapshot()
	if err != nil {
		return nil, err
	}
	s.log.Info("witness state migrated from bbolt to a journal", "path", s.path, "logs", len(s.cache), "misbehaviour_records", len(s.mis))
	clear(s.cache)
	clear(s.byHash)
	clear(s.mis)
	clear(s.misCount)
	s.live = 0
	return data, nil
}

// storedState is the encoding of a State in the bbolt store.
type storedState struct {
	Size uint64 `json:"size"`
	Hash string `json:"hash"`
	Note string `json:"note"`
}

func decodeState(v []byte) (State, error) {
	var ss storedState
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	if err := d.Decode(&ss); err != nil {
		return State{}, err
	}
	h, err := base64.StdEncoding.DecodeString(ss.Hash)
	if err != nil || len(h) != sha256.Size {
		return State{}, errors.New("malformed root hash")
	}
	return State{Size: ss.Size, Hash: [sha256.Size]byte(h), Note: []byte(ss.Note)}, nil
}
