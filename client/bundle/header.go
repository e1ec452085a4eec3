package bundle

import (
	"bufio"
	"fmt"
	"io"
	"unicode/utf8"

	pb "github.com/shiplog/shiplog/proto/bundle"
	"google.golang.org/protobuf/encoding/protowire"
)

// readHeader decodes the n-byte header at off in r one item at a time,
// counting items as it goes: it refuses the (MaxRoots+1)th root, the
// (MaxRoles+1)th targets role, the (MaxPayloads+1)th payload or the
// (MaxSignoffs+1)th sign-off evidence before reading it, so a header of millions of empty messages costs a few
// kilobytes, not gigabytes. Only the canonical encoding is accepted, the
// one proto.MarshalOptions{Deterministic: true} writes for proto/bundle:
// fields in ascending number order (a repeated field's elements
// contiguous), minimal varints, no field holding its zero value except an
// empty snapshot message, bools as 1, valid UTF-8 strings, no unknown
// fields. Each item's bytes are read into their own buffer and the decoded
// bytes fields alias it, so the decoded header costs about n bytes plus a
// constant per item, and nothing is decoded twice.
func readHeader(r io.ReaderAt, off, n int64) (*pb.Header, error) {
	sc := &scanner{br: bufio.NewReaderSize(io.NewSectionReader(r, off, n), 16<<10), left: n}
	h := &pb.Header{}
	var last protowire.Number
	for sc.left > 0 {
		num, b, err := sc.next()
		if err != nil {
			return nil, err
		}
		if num < last || (num == last && !repeatedField(num)) {
			return nil, fmt.Errorf("%w: header is not canonically encoded", errMalformed)
		}
		last = num
		if err := sc.count(num); err != nil {
			return nil, err
		}
		if err := sc.read(b); err != nil {
			return nil, err
		}
		if err := setField(h, num, sc.buf); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// repeatedField reports whether field num of the header is repeated.
func repeatedField(num protowire.Number) bool { return num == 2 || num == 5 || num == 6 || num == 7 }

// scanner reads the header's top-level fields from a buffered reader.
type scanner struct {
	br    *bufio.Reader
	left  int64 // header bytes not yet read
	buf   []byte
	items [8]int // fields seen, by number
}

// next reads the tag and length of the next top-level field, which must be
// one of the header's fields (all length-delimited), and returns its
// number and length.
func (s *scanner) next() (protowire.Number, int64, error) {
	tag, err := s.varint()
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(tag)
	if num < 1 || num > 7 || typ != protowire.BytesType {
		return 0, 0, fmt.Errorf("%w: header has unknown fields", errMalformed)
	}
	l, err := s.varint()
	if err != nil {
		return 0, 0, err
	}
	if l > uint64(s.left) {
		return 0, 0, fmt.Errorf("%w: truncated header", errMalformed)
	}
	return num, int64(l), nil
}

// count refuses a field beyond its limit, before its bytes are read.
func (s *scanner) count(num protowire.Number) error {
	s.items[num]++
	limit := map[protowire.Number]int{2: MaxRoots, 5: MaxRoles, 6: MaxPayloads, 7: MaxSignoffs}[num]
	if limit > 0 && s.items[num] > limit {
		return fmt.Errorf("%w: too many items", errMalformed)
	}
	return nil
}

// read reads the next l bytes into a new s.buf (the decoded header keeps
// slices of it).
func (s *scanner) read(l int64) error {
	s.buf = make([]byte, l)
	if _, err := io.ReadFull(s.br, s.buf); err != nil {
		return fmt.Errorf("%w: truncated header", errMalformed)
	}
	s.left -= l
	return nil
}

// varint reads one minimally encoded varint (at most 10 bytes).
func (s *scanner) varint() (uint64, error) {
	var b [binaryMaxVarint]byte
	for i := range b {
		if s.left == 0 {
			break
		}
		c, err := s.br.ReadByte()
		if err != nil {
			break
		}
		s.left--
		b[i] = c
		if c < 0x80 {
			v, n := protowire.ConsumeVarint(b[:i+1])
			if n != i+1 || protowire.SizeVarint(v) != n {
				break
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: bad varint in header", errMalformed)
}

const binaryMaxVarint = 10

var errNotCanonical = fmt.Errorf("%w: header is not canonically encoded", errMalformed)

// setField decodes header field num, whose bytes are b, into h.
func setField(h *pb.Header, num protowire.Number, b []byte) error {
	var err error
	switch num {
	case 1:
		if len(b) == 0 || !utf8.Valid(b) {
			return errNotCanonical
		}
		h.Repository = string(b)
	case 2:
		var m *pb.Metadata
		m, err = decodeMetadata(b)
		h.Roots = append(h.Roots, m)
	case 3:
		if len(b) == 0 {
			return errNotCanonical
		}
		h.Timestamp = b
	case 4:
		h.Snapshot, err = decodeMetadata(b)
	case 5:
		var m *pb.Metadata
		m, err = decodeMetadata(b)
		h.Targets = append(h.Targets, m)
	case 6:
		var p *pb.Payload
		p, err = decodePayload(b)
		h.Payloads = append(h.Payloads, p)
	case 7:
		var so *pb.Signoff
		so, err = decodeSignoff(b)
		h.Signoffs = append(h.Signoffs, so)
	}
	return err
}

var (
	metadataTypes = []protowire.Type{1: protowire.BytesType, 2: protowire.VarintType, 3: protowire.BytesType, 4: protowire.BytesType, 5: protowire.BytesType}
	payloadTypes  = []protowire.Type{1: protowire.BytesType, 2: protowire.VarintType, 3: protowire.BytesType, 4: protowire.VarintType}
	signoffTypes  = []protowire.Type{1: protowire.BytesType, 2: protowire.BytesType}
)

func decodeSignoff(b []byte) (*pb.Signoff, error) {
	so := &pb.Signoff{}
	err := walk(b, signoffTypes, func(num protowire.Number, _ uint64, s []byte) error {
		if num == 1 {
			so.Subject = s
		} else {
			so.Evidence = s
		}
		return nil
	})
	return so, err
}

func decodeMetadata(b []byte) (*pb.Metadata, error) {
	m := &pb.Metadata{}
	err := walk(b, metadataTypes, func(num protowire.Number, v uint64, s []byte) error {
		switch num {
		case 1:
			if !utf8.Valid(s) {
				return errNotCanonical
			}
			m.Role = string(s)
		case 2:
			m.Version = v
		case 3:
			m.Content = s
		case 4:
			m.TlogProof = s
		case 5:
			m.SigstoreBundle = s
		}
		return nil
	})
	return m, err
}

func decodePayload(b []byte) (*pb.Payload, error) {
	p := &pb.Payload{}
	err := walk(b, payloadTypes, func(num protowire.Number, v uint64, s []byte) error {
		switch num {
		case 1:
			if !utf8.Valid(s) {
				return errNotCanonical
			}
			p.TargetPath = string(s)
		case 2:
			p.Length = v
		case 3:
			p.Sha256 = s
		case 4:
			if v != 1 { // a bool is encoded as 1
				return errNotCanonical
			}
			p.Omitted = true
		}
		return nil
	})
	return p, err
}

// walk decodes a flat message (varint and length-delimited fields, numbered
// as in types) in canonical form: strictly ascending field numbers (so no
// field twice), minimal varints, no zero varint and no empty bytes (proto3
// omits zero values). It calls f with each field's number and value (v for
// a varint, s, a slice of b capped at its length, for bytes).
func walk(b []byte, types []protowire.Type, f func(num protowire.Number, v uint64, s []byte) error) error {
	var last protowire.Number
	for len(b) > 0 {
		tag, n := consumeMinimal(b)
		if n < 0 {
			return errNotCanonical
		}
		b = b[n:]
		num, typ := protowire.DecodeTag(tag)
		if num < 1 || int(num) >= len(types) || types[num] != typ {
			return fmt.Errorf("%w: header has unknown fields", errMalformed)
		}
		if num <= last {
			return errNotCanonical
		}
		last = num
		v, n := consumeMinimal(b)
		if n < 0 || v == 0 {
			return errNotCanonical
		}
		b = b[n:]
		var s []byte
		if typ == protowire.BytesType {
			if v > uint64(len(b)) {
				return fmt.Errorf("%w: truncated header", errMalformed)
			}
			s, b = b[:v:v], b[v:]
			v = 0
		}
		if err := f(num, v, s); err != nil {
			return err
		}
	}
	return nil
}

// consumeMinimal is protowire.ConsumeVarint that also refuses a varint
// longer than needed (n < 0).
func consumeMinimal(b []byte) (uint64, int) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 || protowire.SizeVarint(v) != n {
		return 0, -1
	}
	return v, n
}
