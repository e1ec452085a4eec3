package attest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpack: whatever an archive holds, unpacking never writes outside
// the source directory (a sibling sentinel directory stays empty), and
// every file it leaves is a regular file, a directory or a link that stays
// inside.
func FuzzUnpack(f *testing.F) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "fw/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "fw/main.go", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("ok"))
	tw.WriteHeader(&tar.Header{Name: "fw/l", Typeflag: tar.TypeSymlink, Linkname: "main.go"})
	tw.Close()
	f.Add(tb.Bytes(), uint8(0))
	var gb bytes.Buffer
	zw := gzip.NewWriter(&gb)
	zw.Write(tb.Bytes())
	zw.Close()
	f.Add(gb.Bytes(), uint8(1))
	var zb bytes.Buffer
	z := zip.NewWriter(&zb)
	w, _ := z.Create("../x")
	w.Write([]byte("x"))
	z.Close()
	f.Add(zb.Bytes(), uint8(2))
	formats := []string{"tar", "tar.gz", "zip"}
	f.Fuzz(func(t *testing.T, b []byte, format uint8) {
		base := t.TempDir()
		src, sentinel := filepath.Join(base, "src"), filepath.Join(base, "sentinel")
		os.Mkdir(src, 0o755)
		os.Mkdir(sentinel, 0o755)
		archive := filepath.Join(base, "a")
		os.WriteFile(archive, b, 0o644)
		l := Limits{MaxUnpacked: 1 << 20, MaxFiles: 100}.withDefaults()
		unpack(archive, formats[int(format)%3], src, l)
		if es, _ := os.ReadDir(sentinel); len(es) != 0 {
			t.Fatal("wrote outside the source directory")
		}
		filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			target, _ := os.Readlink(p)
			rel, _ := filepath.Rel(src, p)
			if checkLink(filepath.ToSlash(rel), target) != nil || strings.HasPrefix(target, "/") {
				t.Fatalf("left a link %s -> %s", rel, target)
			}
			return nil
		})
	})
}
