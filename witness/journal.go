package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
)

// The witness's state journal is an append-only file: a header line, then
// records. Each record is framed as
//
//	length   uint32, big-endian: the payload's length, 1 ≤ length ≤ maxRecordSize
//	checksum uint32, big-endian: CRC-32C (Castagnoli) of the payload
//	payload  length bytes
//
// and the payload is one of
//
//	0x01 state: origin length (uint16) ‖ origin ‖ size (uint64) ‖ root hash (32 bytes)
//	            ‖ note length (uint32) ‖ note
//	0x02 misbehaviour: a Misbehaviour record as JSON
//
// all integers big-endian. A state record replaces the log's previous state;
// a misbehaviour record adds a record. For example the state of a log
// "example.com/log" at size 4 with a 300-byte note is the 8-byte frame
// header, then 0x01 0x00 0x0f "example.com/log" 0x00…0x04, 32 hash bytes,
// 0x00 0x00 0x01 0x2c and the note: 352 bytes in all.
//
// The file is grown ahead of the records in zeroed chunks (written and
// synced before any record goes there), so that a commit overwrites blocks
// the file already has and its fdatasync need not also write the file's
// size: one device write per commit, not two. The records end at the first
// frame of length zero.
//
// Records are written by one write per commit, and the commit is answered
// only after the fdatasync that follows it, so a crash can leave at most the
// records of the one unanswered write damaged, or the zeros of one growth
// of the file not written yet: a torn tail (a short frame, a wrong
// checksum, zeros) is cut off on open when everything from journalGrowMax
// bytes past its start to the end of the file is zero. Any other damage
// cannot come from a crash (cutting it would drop acknowledged records, a
// rollback), so parseJournal refuses the file instead; so it does for a
// frame whose checksum holds but whose payload is malformed, and for a log
// whose size goes down.

// journalMagic is the first line of a journal file.
const journalMagic = "shiplog witness state journal v1\n"

const (
	recordState        = 0x01
	recordMisbehaviour = 0x02
	frameHeaderSize    = 8
	// maxRecordSize bounds a payload. A state's note is at most an
	// add-checkpoint request (16 KiB) plus a cosignature line, and a
	// misbehaviour record holds two notes and a proof as JSON.
	maxRecordSize = 256 << 10
	// maxJournalWrite bounds one write: the committer syncs a batch in
	// several writes beyond this.
	maxJournalWrite = 1 << 20
	// journalTornWindow is the most a crash can damage: one write.
	journalTornWindow = maxJournalWrite + frameHeaderSize + maxRecordSize
	// journalGrowChunk is how far the file is grown past the records
	// needing room. journalGrowMax bounds what a crash can leave unwritten
	// past the end of the records: one write, or one growth.
	journalGrowChunk = 1 << 20
	journalGrowMax   = journalTornWindow + journalGrowChunk
	// maxOriginSize bounds an origin (a checkpoint's first line).
	maxOriginSize = 1 << 10
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// journalRecord is one decoded record: a state (when Misbehaviour is nil)
// or a misbehaviour record.
type journalRecord struct {
	Origin       string
	State        State
	Misbehaviour *Misbehaviour
}

// JournalCorruptError reports a journal damaged where a crash cannot have
// damaged it. The witness refuses to start on it rather than roll back.
type JournalCorruptError struct {
	Offset int64
	Reason string
}

func (e *JournalCorruptError) Error() string {
	return fmt.Sprintf("witness state journal corrupt at byte %d: %s (not a torn write: restore the state from a copy, never start from an older one)", e.Offset, e.Reason)
}

var errNotJournal = errors.New("not a witness state journal")

// appendStateRecord appends the framed state record of origin to b.
func appendStateRecord(b []byte, origin string, st State) []byte {
	n := 1 + 2 + len(origin) + 8 + sha256.Size + 4 + len(st.Note)
	b = appendFrameHeader(b, n)
	start := len(b)
	b = append(b, recordState)
	b = binary.BigEndian.AppendUint16(b, uint16(len(origin)))
	b = append(b, origin...)
	b = binary.BigEndian.AppendUint64(b, st.Size)
	b = append(b, st.Hash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.Note)))
	b = append(b, st.Note...)
	return sealFrame(b, start)
}

// appendMisbehaviourRecord appends the framed misbehaviour record m to b.
func appendMisbehaviourRecord(b []byte, m Misbehaviour) ([]byte, error) {
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if 1+len(j) > maxRecordSize {
		return nil, errors.New("misbehaviour record too large")
	}
	b = appendFrameHeader(b, 1+len(j))
	start := len(b)
	b = append(b, recordMisbehaviour)
	b = append(b, j...)
	return sealFrame(b, start), nil
}

// appendFrameHeader appends the length and a checksum placeholder.
func appendFrameHeader(b []byte, n int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return append(b, 0, 0, 0, 0)
}

// sealFrame fills in the checksum of the payload that starts at start.
func sealFrame(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start-4:start], crc32.Checksum(b[start:], crc32c))
	return b
}

// validStateRecord reports whether origin and st fit a record.
func validStateRecord(origin string, st State) bool {
	return origin != "" && len(origin) <= maxOriginSize && 1+2+len(origin)+8+sha256.Size+4+len(st.Note) <= maxRecordSize
}

// parseJournal decodes a journal file's content. It returns the records in
// order and the length of the valid prefix: data[valid:] is a torn tail to
// cut off (empty if none). It returns errNotJournal if data does not start
// with the journal header, and a *JournalCorruptError for damage a crash
// cannot explain.
func parseJournal(data []byte) (records []journalRecord, valid int64, err error) {
	if !bytes.HasPrefix(data, []byte(journalMagic)) {
		return nil, 0, errNotJournal
	}
	off := len(journalMagic)
	sizes := map[string]uint64{}
	for off < len(data) {
		rec, n, bad := parseFrame(data[off:])
		if bad != "" {
			if i := nonZero(data, off+journalGrowMax, len(data)); i >= 0 {
				return nil, 0, &JournalCorruptError{Offset: int64(off), Reason: fmt.Sprintf("%s, and data at byte %d after it", bad, i)}
			}
			return records, int64(off), nil // torn tail, or the zeros past the records
		}
		if rec == nil {
			return nil, 0, &JournalCorruptError{Offset: int64(off), Reason: "malformed record"}
		}
		if rec.Misbehaviour == nil {
			if prev, ok := sizes[rec.Origin]; ok && rec.State.Size < prev {
				return nil, 0, &JournalCorruptError{Offset: int64(off), Reason: "a log's size goes down"}
			}
			sizes[rec.Origin] = rec.State.Size
		}
		records = append(records, *rec)
		off += n
	}
	return records, int64(off), nil
}

// nonZero returns the offset of the first non-zero byte of data[from:to],
// or -1.
func nonZero(data []byte, from, to int) int {
	for i := from; i < to; i++ {
		if data[i] != 0 {
			return i
		}
	}
	return -1
}

// parseFrame decodes the frame at the start of b. It returns bad ≠ "" for a
// frame that is short or fails its checksum (what a torn write leaves), and
// a nil record for a sound frame with a malformed payload.
func parseFrame(b []byte) (rec *journalRecord, n int, bad string) {
	if len(b) < frameHeaderSize {
		return nil, 0, "short frame header"
	}
	size := binary.BigEndian.Uint32(b)
	if size == 0 || size > maxRecordSize {
		return nil, 0, "bad record length"
	}
	n = frameHeaderSize + int(size)
	if len(b) < n {
		return nil, 0, "short record"
	}
	payload := b[frameHeaderSize:n]
	if crc32.Checksum(payload, crc32c) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, "checksum mismatch"
	}
	return parsePayload(payload), n, ""
}

// parsePayload decodes a checksummed payload, or returns nil.
func parsePayload(p []byte) *journalRecord {
	switch p[0] {
	case recordState:
		return parseStatePayload(p[1:])
	case recordMisbehaviour:
		var m Misbehaviour
		d := json.NewDecoder(bytes.NewReader(p[1:]))
		d.DisallowUnknownFields()
		if err := d.Decode(&m); err != nil || d.More() || m.Origin == "" {
			return nil
		}
		// Only the canonical encoding (what appendMisbehaviourRecord writes).
		if j, err := json.Marshal(m); err != nil || !bytes.Equal(j, p[1:]) {
			return nil
		}
		return &journalRecord{Origin: m.Origin, Misbehaviour: &m}
	}
	return nil
}

func parseStatePayload(p []byte) *journalRecord {
	if len(p) < 2 {
		return nil
	}
	ol := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if ol == 0 || ol > maxOriginSize || len(p) < ol+8+sha256.Size+4 {
		return nil
	}
	r := &journalRecord{Origin: string(p[:ol])}
	p = p[ol:]
	r.State.Size = binary.BigEndian.Uint64(p)
	r.State.Hash = [sha256.Size]byte(p[8 : 8+sha256.Size])
	p = p[8+sha256.Size:]
	nl := int(binary.BigEndian.Uint32(p))
	if p = p[4:]; len(p) != nl {
		return nil
	}
	if nl > 0 {
		r.State.Note = bytes.Clone(p)
	}
	return r
}
