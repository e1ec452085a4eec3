package bundle_test

import (
	"bytes"
	"testing"

	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/fixture"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"google.golang.org/protobuf/proto"
)

func TestOpenRejectsMalformedContainers(t *testing.T) {
	r := fixture.New(t)
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
