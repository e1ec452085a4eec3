package bundle_test

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/internal/harness"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"google.golang.org/protobuf/proto"
)

func TestOpenRejectsMalformedContainers(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "a.bin", []byte("payload"), nil)
	r.Publish()
	good := r.Bundle("a.bin")
	if _, err := bundle.Open(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatal(err)
	}
	b, _ := bundle.Open(bytes.NewReader(good), int64(len(good)))
	// An unknown field appended to the header.
	h := proto.Clone(b.Header).(*pb.Header)
	h.ProtoReflect().SetUnknown([]byte{0x78, 0x01})
	body, _ := proto.Marshal(h)
	head := append([]byte(bundle.Magic), byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	bad := append(append(head, body...), []byte("payload")...)
	if _, err := bundle.Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
		t.Error("unknown field accepted")
	}
	for name, bad := range map[string][]byte{
		"empty":       {},
		"magic":       append([]byte("shiplog-bundle/v2\n"), good[18:]...),
		"trailing":    append(bytes.Clone(good), 0),
		"truncated":   good[:len(good)-1],
		"huge header": append([]byte(bundle.Magic), 0xff, 0xff, 0xff, 0xff),
	} {
		if _, err := bundle.Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzOpen(f *testing.F) {
	f.Add([]byte(bundle.Magic + "\x00\x00\x00\x00"))
	f.Add([]byte("not a bundle"))
	h := &pb.Header{Repository: "r", Timestamp: []byte("{}"), Snapshot: &pb.Metadata{Role: "snapshot", Version: 1, Content: []byte("{}")},
		Payloads: []*pb.Payload{{TargetPath: "a", Length: 1, Sha256: make([]byte, 32)}}}
	head, _ := bundle.EncodeHeader(h)
	f.Add(append(head, 'x'))
	f.Add(hostile(64, []byte{0x12, 0x00}))
	f.Add(hostile(64, []byte{0x32, 0x02, 0x20, 0x02}))
	f.Fuzz(func(t *testing.T, b []byte) {
		bu, err := bundle.Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		again, err := bundle.EncodeHeader(bu.Header)
		if err != nil || !bytes.Equal(again, b[:len(again)]) {
			t.Fatal("accepted header does not re-encode to itself")
		}
	})
}

// hostile returns a bundle whose header is n bytes of repeated item, each
// item a whole encoded field.
func hostile(n int, item []byte) []byte {
	b := append([]byte(bundle.Magic), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	for len(b) < len(bundle.Magic)+4+n {
		b = append(b, item...)
	}
	return b[:len(bundle.Magic)+4+n]
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAttackBundleHeaderMemoryExhaustion: a header of MaxHeaderSize bytes of
// empty messages (2 bytes each, millions of items; no key needed) used to
// be decoded whole before the item limits applied (4.8 GB for 64 MiB).
// Items are counted while reading, so Open refuses after the limit having
// allocated a small constant.
func TestAttackBundleHeaderMemoryExhaustion(t *testing.T) {
	for name, item := range map[string][]byte{
		"empty roots":    {0x12, 0x00},
		"empty targets":  {0x2a, 0x00},
		"empty payloads": {0x32, 0x00},
		"tiny roots":     {0x12, 0x02, 0x10, 0x01},
	} {
		b := hostile(bundle.MaxHeaderSize, item)
		var err error
		got := allocated(func() { _, err = bundle.Open(bytes.NewReader(b), int64(len(b))) })
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if got > 2<<20 {
			t.Errorf("%s: Open allocated %d bytes for a refused header, want < 2 MiB", name, got)
		}
	}
	// The other hostile shape, few items of large contents, costs about the
	// header's size: the decoded fields alias the bytes read.
	content := make([]byte, bundle.MaxHeaderSize-16)
	h := &pb.Header{Roots: []*pb.Metadata{{Role: "root", Version: 1, Content: content}}}
	body, _ := proto.Marshal(h)
	b := append([]byte(bundle.Magic), byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	b = append(b, body...)
	var err error
	got := allocated(func() { _, err = bundle.Open(bytes.NewReader(b), int64(len(b))) })
	if err == nil {
		t.Error("header without timestamp accepted")
	}
	if got > uint64(len(body))+2<<20 {
		t.Errorf("Open allocated %d bytes for a %d-byte header, want at most the header plus 2 MiB", got, len(body))
	}
}

// TestOpenAgreesWithProtobuf: every bit flip of a valid header is either
// refused or decodes to what protobuf decodes and re-encodes to itself (the
// streaming decoder accepts exactly the deterministic encoding).
func TestOpenAgreesWithProtobuf(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "a.bin", []byte("payload"), nil)
	r.Publish()
	good := r.Bundle("a.bin")
	n := int(good[18])<<24 | int(good[19])<<16 | int(good[20])<<8 | int(good[21])
	for i := 22; i < 22+n; i++ {
		for bit := 0; bit < 8; bit++ {
			bad := bytes.Clone(good)
			bad[i] ^= 1 << bit
			b, err := bundle.Open(bytes.NewReader(bad), int64(len(bad)))
			if err != nil {
				continue
			}
			want := &pb.Header{}
			if err := proto.Unmarshal(bad[22:22+n], want); err != nil {
				t.Fatalf("byte %d bit %d: Open accepted what protobuf refuses: %v", i, bit, err)
			}
			if !proto.Equal(want, b.Header) {
				t.Fatalf("byte %d bit %d: Open and protobuf decode differently", i, bit)
			}
			again, err := bundle.EncodeHeader(b.Header)
			if err != nil || !bytes.Equal(again, bad[:len(again)]) {
				t.Fatalf("byte %d bit %d: accepted header does not re-encode to itself", i, bit)
			}
		}
	}
}
